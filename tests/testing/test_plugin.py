"""The pytest plugin, as a user meets it: pytester runs a test file in a fresh pytest process, where the plugin is
found through its ``pytest11`` entry point (nothing is imported by hand), and that file sends real mail over SMTP
(smtplib, Django's SMTP backend) to the in-process capture server and reads it back through the fixtures."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SMTPLIB_TESTS = '''
import smtplib

import httpx
import pytest

SEEN = {}


def send(capture, subject, to="dev@example.test"):
    msg = f"From: app@example.org\\r\\nTo: {to}\\r\\nSubject: {subject}\\r\\n\\r\\nHello.\\r\\n"
    with smtplib.SMTP(capture.smtp_host, capture.smtp_port) as s:
        s.sendmail("app@example.org", [to], msg)


def test_send_and_read(courrier_capture):
    SEEN["port"] = courrier_capture.smtp_port
    assert courrier_capture.smtp_host == "127.0.0.1"
    send(courrier_capture, "Welcome aboard")
    send(courrier_capture, "Second one", to="other@example.test")
    got = courrier_capture.wait_for('subject:"Welcome aboard"', timeout=10)
    assert got["To"] == [{"Name": "", "Address": "dev@example.test"}]
    assert [m["Subject"] for m in courrier_capture.messages()] == ["Second one", "Welcome aboard"]
    assert [m["Subject"] for m in courrier_capture.messages("to:other@example.test")] == ["Second one"]
    assert b"Hello." in courrier_capture.client.raw(got["ID"])
    assert courrier_capture.client.message(got["ID"])["Subject"] == "Welcome aboard"
    r = httpx.get(courrier_capture.base_url + "/api/v1/info")
    assert r.status_code == 200
    courrier_capture.clear()
    assert courrier_capture.messages() == []


def test_each_test_starts_empty_on_the_same_server(courrier_capture):
    assert courrier_capture.messages() == []
    assert courrier_capture.smtp_port == SEEN["port"]


def test_wait_for_times_out_as_a_failed_assertion(courrier_capture):
    with pytest.raises(AssertionError, match="no message matching"):
        courrier_capture.wait_for("subject:never", timeout=0.3)


def test_wait_for_wakes_on_arrival(courrier_capture):
    import threading
    import time

    t = threading.Timer(0.3, send, (courrier_capture, "Late"))
    t.start()
    start = time.monotonic()
    assert courrier_capture.wait_for("subject:Late", timeout=20)["Subject"] == "Late"
    assert time.monotonic() - start < 10
    t.join()
'''


def test_fixtures_under_pytester(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mail=SMTPLIB_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_wrong_expectation_fails_the_users_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fail="""
        def test_expects_mail_that_never_comes(courrier_capture):
            courrier_capture.wait_for("subject:missing", timeout=0.2)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MessageTimeout: no message matching 'subject:missing' within 0.2s*"])


def test_settings_override_from_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="session")
        def courrier_settings():
            return {"capture": {"tag_rules": [{"query": "subject:invoice", "tags": ["billing"]}]}}
    """)
    pytester.makepyfile(test_tags="""
        import smtplib

        def test_tagged(courrier_capture):
            with smtplib.SMTP(courrier_capture.smtp_host, courrier_capture.smtp_port) as s:
                s.sendmail("a@example.org", ["b@example.test"],
                           "From: a@example.org\\r\\nTo: b@example.test\\r\\nSubject: Your invoice\\r\\n\\r\\nx\\r\\n")
            assert courrier_capture.wait_for("tag:billing", timeout=10)["Tags"] == ["billing"]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_django_smtp_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_django="""
        import django
        from django.conf import settings


        def test_send_mail(courrier_capture):
            settings.configure(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                               EMAIL_HOST=courrier_capture.smtp_host, EMAIL_PORT=courrier_capture.smtp_port,
                               DEFAULT_FROM_EMAIL="noreply@example.org")
            django.setup()
            from django.core.mail import send_mail

            assert send_mail("Reset your password", "Follow the link.", None, ["user@example.test"]) == 1
            got = courrier_capture.wait_for("to:user@example.test", timeout=10)
            assert got["Subject"] == "Reset your password"
            assert got["From"]["Address"] == "noreply@example.org"
            assert "Follow the link." in courrier_capture.client.message(got["ID"])["Text"]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
