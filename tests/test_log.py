"""Structured logs: one key=value line per event, quoting, levels, and the background writer losing nothing."""

import io
import re

from courrier import log


def test_format_and_quoting():
    line = log.format_event("info", "smtp.message", {"qid": "ABC", "text": 'OK "queued" as x', "none": None,
                                                     "n": 3, "empty": ""})
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info smtp\.message ", line)
    assert line.endswith('qid=ABC text="OK \\"queued\\" as x" n=3 empty=""')
    assert "\n" not in log.format_event("warn", "x", {"v": "two\nlines"})


def test_levels_and_background_writer_flushes_everything():
    buf = io.StringIO()
    log.setup("info", buf, background=True)
    try:
        log.event("dropped.debug", level="debug", a=1)
        for i in range(2000):
            log.event("test.line", i=i)
    finally:
        log.flush()
        log.setup("info", None)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2000 and lines[-1].endswith("test.line i=1999")
    assert not any("dropped.debug" in x for x in lines)
