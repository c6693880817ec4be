# courrier — two commands: `make run` and `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
PYTHON  ?= python3
# Debian packages the test-suite talks to (real clients and peers, never mocks).
DEB_TEST_PKGS := swaks curl openssl postfix dovecot-imapd dovecot-pop3d mutt chromium chromium-driver git-email php-cli fonts-noto-color-emoji fonts-noto-cjk spamassassin spamd spamc dovecot-sieve sieve-connect postgresql

.PHONY: run test lint deps-debian bench clean screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/courrier serve

# Installs the Debian packages when any is missing (Postfix with debconf "No configuration",
# so nothing system-wide starts).
deps-debian:
	@missing=""; for p in $(DEB_TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  $$SUDO systemctl stop postfix dovecot 2>/dev/null || true; \
	  $$SUDO service postfix stop 2>/dev/null || true; $$SUDO service dovecot stop 2>/dev/null || true; \
	fi

test: $(VENV)/.installed-test deps-debian
	$(VENV)/bin/ruff check courrier tests bench
	$(VENV)/bin/pytest -q -x -n 3 --dist loadfile --durations=15

# The README's two pictures (light, dark), taken by the Chromium tests of the inspector; every screenshot of those
# tests (1400x900 and 390x844) stays in tests/artifacts/.
screenshots: $(VENV)/.installed-test deps-debian
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/e2e/test_81_ui_theme.py -k "dark_follows or light_and"
	cp tests/artifacts/81-light-desktop.png docs/screenshot-light.png
	cp tests/artifacts/81-dark-desktop.png docs/screenshot-dark.png

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check courrier tests bench

bench: $(VENV)/.installed-test deps-debian
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) courrier-data .pytest_cache
