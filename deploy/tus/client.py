"""A real tus client (tuspy) driving Keel's resumable uploads, for the test suite.

    client.py ENDPOINT TOKEN FILE [--chunk BYTES] [--stop-at BYTES] [--url UPLOAD_URL]

Creates an upload at ENDPOINT (or resumes UPLOAD_URL, asking the server for its offset)
and sends FILE in chunks, each with an Upload-Checksum, up to --stop-at bytes (all of
them by default). Prints {"url": ..., "offset": ...} as JSON.
"""

import argparse
import json
import os

from tusclient import client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("token")
    parser.add_argument("file")
    parser.add_argument("--chunk", type=int, default=1024 * 1024)
    parser.add_argument("--stop-at", type=int, default=None)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()

    tus = client.TusClient(args.endpoint, headers={"Authorization": f"Bearer {args.token}"})
    uploader = tus.uploader(
        args.file,
        url=args.url,
        chunk_size=args.chunk,
        metadata={"filename": os.path.basename(args.file), "filetype": "application/octet-stream"},
        upload_checksum=True,
    )
    uploader.upload(stop_at=args.stop_at)
    print(json.dumps({"url": uploader.url, "offset": uploader.offset}))


if __name__ == "__main__":
    main()
