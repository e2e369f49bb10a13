# Quick start: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_ENV := var/dev.env

.PHONY: install run test lint bench badday clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Development secrets, made once per checkout; production sets these in its environment.
$(DEV_ENV):
	mkdir -p var
	$(BIN)/python -c "import secrets; print('IVR_SECRET_KEY=' + secrets.token_hex(32)); print('TWILIO_AUTH_TOKEN=' + secrets.token_hex(16)); print('IVR_DEMO_PASSWORD=' + secrets.token_urlsafe(12))" > $(DEV_ENV)
	chmod 600 $(DEV_ENV)

run: $(STAMP) $(DEV_ENV)
	set -a && . ./$(DEV_ENV) && set +a && $(BIN)/ivr demo && exec $(BIN)/ivr serve

test: $(STAMP)
	$(BIN)/pytest

# Whole calls against `ivr serve` on PostgreSQL (127.0.0.1:5432, database ivr_bench), beside
# the floor; --all adds the grown database and the burst. Quick look: make bench BENCH_ARGS=
BENCH_ARGS ?= --all
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# A bad day: API reads, deep dashboard pages, sign-in floods and a locked sign-in table while
# super users call; counts the calls served through the outage path (database ivr_badday_bench,
# grown to 1,000,000 tickets once; --reuse keeps it). Quick look: make badday BADDAY_ARGS="--tickets 0"
BADDAY_ARGS ?=
badday: $(STAMP)
	$(BIN)/python -m bench.badday $(BADDAY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
