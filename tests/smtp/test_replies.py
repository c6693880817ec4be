"""The storage-failure reply: a full disk or quota is 452 4.3.1, any other storage error 451 4.3.0 — both
temporary, so the client keeps the message and retries."""

from __future__ import annotations

import errno
import os

import pytest

from courrier.smtp import replies as R


def test_a_real_full_device_is_out_of_space():
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, b"x")
    finally:
        os.close(fd)
    assert R.out_of_space(e.value)
    reply = R.storage_failure(e.value)
    assert (reply.code, reply.enhanced) == (452, "4.3.1") and reply.temporary


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_full_disk_and_quota_are_452(code):
    assert R.storage_failure(OSError(code, os.strerror(code))) is R.INSUFFICIENT_STORAGE


@pytest.mark.parametrize("code", [errno.EIO, errno.EACCES, errno.EROFS, errno.ESHUTDOWN, None])
def test_other_storage_errors_are_451(code):
    e = OSError(code, os.strerror(code)) if code is not None else OSError("no errno")
    assert not R.out_of_space(e)
    reply = R.storage_failure(e)
    assert reply is R.LOCAL_ERROR and (reply.code, reply.enhanced) == (451, "4.3.0")


def test_a_missing_file_is_a_local_error_too():
    with pytest.raises(OSError) as e:
        open("/nonexistent/courrier-test", "rb")
    assert R.storage_failure(e.value) is R.LOCAL_ERROR
