"""moto in server mode on 127.0.0.1 (stands in for RunPod volumes and Tigris). Small parts allowed."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("S3_UPLOAD_PART_MIN_SIZE", "1024")  # RunPod does not enforce S3's 5 MiB minimum


class MotoS3:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        os.environ["S3_UPLOAD_PART_MIN_SIZE"] = "1024"
        self._srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._srv.start()
        host, port = self._srv.get_host_and_port()
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="testkey",
                            aws_secret_access_key="testsecret",
                            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()

    def stop(self) -> None:
        self._srv.stop()
