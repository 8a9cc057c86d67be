//! The storage crate against the real thing: a local folder, and the S3-compatible test
//! server (moto) — put, streamed multipart put, ranged get, list, delete, presigned PUT
//! and GET used by a plain HTTP client holding no credentials.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use bytes::Bytes;
use futures::TryStreamExt;
use keel_config::{StorageBackend, StorageSettings};
use keel_storage::{ByteRange, Method, ObjectKey, PresignConditions, Storage, StorageError};
use keel_testing::S3Bucket;

fn local_settings(root: &std::path::Path) -> StorageSettings {
    StorageSettings {
        backend: StorageBackend::Local,
        local_root: root.to_string_lossy().into_owned(),
        s3_endpoint: String::new(),
        s3_bucket: String::new(),
        s3_region: "us-east-1".into(),
        s3_access_key_id: String::new(),
        s3_secret_access_key: "".into(),
        s3_path_style: false,
        presign_expiry_secs: 60,
    }
}

fn s3_settings(bucket: &S3Bucket) -> StorageSettings {
    StorageSettings {
        backend: StorageBackend::S3,
        local_root: String::new(),
        s3_endpoint: bucket.endpoint.clone(),
        s3_bucket: bucket.name.clone(),
        s3_region: "us-east-1".into(),
        s3_access_key_id: "keel-test".into(),
        s3_secret_access_key: "keel-test-secret".into(),
        s3_path_style: true,
        presign_expiry_secs: 60,
    }
}

fn temp_root() -> std::path::PathBuf {
    std::env::temp_dir()
        .join("keel-test-storage")
        .join(keel_config::testing::unique_prefix())
}

async fn read(storage: &Storage, key: &ObjectKey, range: Option<ByteRange>) -> Vec<u8> {
    let download = storage.get(key, range).await.expect("get");
    download
        .stream
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .expect("read")
}

/// 12 MiB + 3 bytes of a repeating pattern: three parts, the last one short.
fn pattern() -> Vec<u8> {
    (0..12 * 1024 * 1024 + 3).map(|i| (i % 251) as u8).collect()
}

/// What every backend must do; `Storage::writer` streams in uneven chunks.
async fn exercise(storage: &Storage) {
    let org = uuid::Uuid::new_v4().to_string();
    let key = ObjectKey::new([org.as_str(), "uploads", "one", "original"]);
    let data = pattern();
    let mut writer = storage.writer(key.clone()).await.expect("writer");
    for chunk in data.chunks(700_001) {
        writer
            .write(Bytes::copy_from_slice(chunk))
            .await
            .expect("write");
    }
    assert_eq!(writer.finish().await.expect("finish"), data.len() as u64);

    assert_eq!(read(storage, &key, None).await, data);
    assert_eq!(
        read(storage, &key, Some(ByteRange::Bounded(10, 20))).await,
        data[10..20]
    );
    assert_eq!(
        read(storage, &key, Some(ByteRange::From(data.len() as u64 - 5))).await,
        data[data.len() - 5..]
    );
    assert_eq!(
        read(storage, &key, Some(ByteRange::Last(7))).await,
        data[data.len() - 7..]
    );
    let past = storage
        .get(&key, Some(ByteRange::From(data.len() as u64 + 10)))
        .await;
    // A range past the end fails (the local store says `Range`; callers check ranges
    // against the size they know before asking).
    assert!(past.is_err(), "{past:?}");
    assert_eq!(
        storage.head(&key).await.expect("head").size,
        data.len() as u64
    );

    // An aborted write leaves no object.
    let aborted = ObjectKey::new([org.as_str(), "uploads", "two", "original"]);
    let mut writer = storage.writer(aborted.clone()).await.expect("writer");
    writer
        .write(Bytes::from(vec![1u8; 6 * 1024 * 1024]))
        .await
        .expect("write");
    writer.abort().await.expect("abort");
    assert!(matches!(
        storage.head(&aborted).await,
        Err(StorageError::NotFound(_))
    ));

    let small = ObjectKey::new([org.as_str(), "uploads", "one", "thumbnail.png"]);
    storage
        .put(&small, Bytes::from_static(b"tiny"))
        .await
        .expect("put");
    let prefix = ObjectKey::new([org.as_str(), "uploads", "one"]);
    let mut listed: Vec<String> = storage
        .list(Some(&prefix))
        .map_ok(|o| o.key.to_string())
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(listed, [key.to_string(), small.to_string()]);

    assert_eq!(
        storage.delete_prefix(&prefix).await.expect("delete prefix"),
        2
    );
    storage
        .delete(&key)
        .await
        .expect("deleting a missing object is fine");
    let left: Vec<_> = storage.list(None).try_collect().await.expect("list");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn local_folder() {
    let root = temp_root();
    let storage = Storage::new(&local_settings(&root)).expect("storage");
    assert!(!storage.can_presign());
    exercise(&storage).await;
    // Nothing left on disk either: no staging files, no empty folders.
    let files: Vec<_> = keel_testing::files_under(&root);
    assert!(files.is_empty(), "{files:?}");
    let key = ObjectKey::new(["a"]);
    assert!(matches!(
        storage
            .presign(Method::GET, &key, &PresignConditions::default())
            .await,
        Err(StorageError::CannotPresign)
    ));
    std::fs::remove_dir_all(root).ok();
}

#[tokio::test]
async fn s3_compatible_server() {
    let bucket = S3Bucket::new().await;
    let storage = Storage::new(&s3_settings(&bucket)).expect("storage");
    exercise(&storage).await;
}

#[tokio::test]
async fn presigned_put_and_get_work_without_credentials() {
    let bucket = S3Bucket::new().await;
    let storage = Storage::new(&s3_settings(&bucket)).expect("storage");
    let key = ObjectKey::new(["org", "uploads", "direct", "original"]);
    let body = b"hello, direct upload".to_vec();
    let conditions = PresignConditions {
        content_type: Some("text/plain".into()),
        ..PresignConditions::default()
    };
    let put = storage
        .presign(Method::PUT, &key, &conditions)
        .await
        .expect("presign put");
    let client = reqwest::Client::new();

    // The store refuses a request whose signed headers differ: the type is in the signature.
    // (moto's server does not check signatures; S3 and other stores do.)
    let signed = put
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-SignedHeaders")
        .map(|(_, v)| v.into_owned())
        .expect("signed headers");
    assert_eq!(signed, "content-type;host");
    assert!(
        put.query_pairs()
            .any(|(k, v)| k == "X-Amz-Expires" && v == "60")
    );

    let ok = client
        .put(put)
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .expect("put");
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(
        storage.head(&key).await.expect("head").size,
        body.len() as u64
    );

    let get = storage
        .presign(Method::GET, &key, &PresignConditions::default())
        .await
        .expect("presign get");
    let fetched = client.get(get.clone()).send().await.expect("get");
    assert_eq!(
        fetched.bytes().await.expect("body").as_ref(),
        body.as_slice()
    );
}
