-- How the `just bench-1m` fixture derives ids and secrets from row numbers, included by
-- fixture.sql (which writes them) and requests.sql (which sends them): uuids are the md5
-- of `keel-bench-{kind}-{n}`, secrets a prefix and the base64url SHA-256 of the same
-- text — the shape of real ones (43 characters after the prefix).
CREATE FUNCTION pg_temp.bench_uuid(kind text, n bigint) RETURNS uuid
    LANGUAGE sql IMMUTABLE AS $$ SELECT md5('keel-bench-' || kind || '-' || n)::uuid $$;
CREATE FUNCTION pg_temp.bench_secret(prefix text, kind text, n bigint) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT prefix || rtrim(translate(encode(sha256(convert_to('keel-bench-' || kind || '-' || n, 'UTF8')), 'base64'), '+/', '-_'), '=')
$$;
