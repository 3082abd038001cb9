# Plant Change Control — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test venv migrate demo lint check-deploy messages clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo

## make run: web, worker and beat in the foreground on http://127.0.0.1:$(PORT) (Ctrl-C stops all three)
run: demo
	@echo ""
	@echo "  Plant Change Control on http://127.0.0.1:$(PORT)/"
	@echo "  Demo logins (password: $${DEMO_PASSWORD:-demo}): dev tester itmanager opsmanager cio plantdirector releasemgr auditor admin"
	@echo "  Links in mails point at $${SITE_URL:-http://127.0.0.1:$(PORT)} (set SITE_URL to change it)."
	@echo "  Two-step sign-in is optional in the demo (MFA_REQUIRED_ROLES is empty unless you set it)."
	@echo "  Health: http://127.0.0.1:$(PORT)/healthz    API docs: http://127.0.0.1:$(PORT)/api/docs/"
	@echo ""
	DEBUG=$${DEBUG:-1} MFA_REQUIRED_ROLES=$${MFA_REQUIRED_ROLES-} SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)} \
	  $(VENV)/bin/honcho -f Procfile.dev start

## make test: the whole suite (embedded default unless DATABASE_URL / REDIS_URL are set)
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

## make check-deploy: Django's deployment checks with the production environment you export
check-deploy: venv
	$(PY) manage.py check --deploy --database default --fail-level WARNING

## make messages: extract the strings to translate into locale/de (German) and compile the catalog
## (needs GNU gettext); a test fails while any entry is missing, untranslated or fuzzy
messages: venv
	$(PY) manage.py makemessages -l de --no-location --no-obsolete --no-wrap -i tests -i bench -i docs -i var -i test-artifacts
	$(PY) manage.py compilemessages -l de --ignore .venv

clean:
	rm -rf var .pytest_cache test-artifacts
