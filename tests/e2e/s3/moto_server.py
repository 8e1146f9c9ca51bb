"""moto's S3 server with S3's single-request copy limit, which moto does not enforce.

AWS S3 refuses a CopyObject whose source is larger than 5 GiB (a larger object must be
copied by a multipart upload). Every suite's moto runs through this launcher, so a copy
that only works on moto fails here as it would on S3. A key with a path segment
`copy-limit-N` has the limit N bytes instead, so the integration suite can cross the
limit with small blobs (push_pull::blobs_above_the_copy_limit_commit_whole).

Usage: python moto_server.py [moto_server's arguments]
"""

import re
import sys

from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend
from moto.server import main

SINGLE_COPY_LIMIT = 5 * 1024**3
LOWERED = re.compile(r"(?:^|/)copy-limit-(\d+)/")


def copy_limit(key_name):
    lowered = LOWERED.search(key_name)
    return int(lowered.group(1)) if lowered else SINGLE_COPY_LIMIT


class CopySourceTooLarge(S3ClientError):
    def __init__(self, limit):
        super().__init__(
            "InvalidRequest",
            "The specified copy source is larger than the maximum allowable size for a copy source: %d" % limit,
        )


_copy_object = S3Backend.copy_object


def copy_object(self, src_key, *args, **kwargs):
    limit = copy_limit(src_key.name)
    if src_key.size > limit:
        raise CopySourceTooLarge(limit)
    return _copy_object(self, src_key, *args, **kwargs)


S3Backend.copy_object = copy_object

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
