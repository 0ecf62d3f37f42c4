# The two commands a newcomer needs: `make dev` (the whole stack, locally) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
INSTALLED := $(VENV)/.installed

.PHONY: dev test browser bench bench-recon bench-batch chaos drill lint lock clean

# Shows what it does: on a terminal uv draws its download progress; anywhere it prints what it
# resolved and installed (about 100 lines, once, and again only when requirements.lock changes).
# Compiled to bytecode once here: where PYTHONDONTWRITEBYTECODE is set, every process would
# otherwise compile each package it imports again (importing the API and the worker took 4.5
# CPU-seconds, 2.1 compiled; a suite starts a hundred such processes).
$(INSTALLED): requirements.lock pyproject.toml
	@echo "Installing into $(VENV) the packages pinned in requirements.lock (first time: a minute or two) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'payments-checkout.pth').write_text('$(CURDIR)\n')"
	@touch $@
	@echo "Installed into $(VENV)."

dev: $(INSTALLED)
	$(BIN)/python -m devstack

# Four processes on two cores: most tests wait on a stack (timers, restarts, a killed worker's
# timeout), so more processes fill those waits. With two `yes` beside it, on a fresh clone: pytest
# 830 s with -n 2; 616-717 s with -n 3 (whole suite 11:39-12:48 over four runs); 603 s with -n 4
# (10:16); 461 s (9:01 in all) once the install compiled the packages' bytecode, where the same
# day's run without it took 717 s (13:27). By file, so a module's fixtures start once.
test: $(INSTALLED) lint browser
	$(BIN)/pytest -q -n 4 --dist loadfile --durations=20

# The checkout page's browser tests drive Debian's Chromium (Playwright cannot download one here).
# Without it they skip, except under CI=true, where they fail.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium is missing: apt-get update && apt-get install -y chromium (for the browser tests)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	    || echo "could not install chromium: the browser tests will skip (and fail under CI=true)"; }

# Open-loop payments at 12/s, the knee vs. the bare-Temporal ceiling, CPU and round trips per payment
# (see bench/payments.py); BENCH_ARGS="--rate R --duration S --step-seconds S".
bench: $(INSTALLED)
	$(BIN)/python -m bench.payments $(BENCH_ARGS)

# Reconciliation of a 100k-payment window (see bench/reconciliation.py); RECON_ARGS="--count N".
bench-recon: $(INSTALLED)
	$(BIN)/python -m bench.reconciliation $(RECON_ARGS)

# A payout run over 10,000 merchants, then reconciliation of 1,000,000 payments (see bench/batch.py);
# BATCH_ARGS="--merchants N --payments N --payout-concurrency C --payout-page-size P".
bench-batch: $(INSTALLED)
	$(BIN)/python -m bench.batch $(BATCH_ARGS)

# A seeded fault run on a throwaway stack (see chaos/); CHAOS_ARGS="--seed N --count N --concurrency C".
chaos: $(INSTALLED)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

# A store lost on a throwaway stack under payment load (see drills/); exit 1 when money is lost.
# DRILL=NAME|all (python -m drills --help lists them) DRILL_ARGS="--count N --seed N".
DRILL ?= all
drill: $(INSTALLED)
	$(BIN)/python -m drills $(DRILL) $(DRILL_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# Re-pin every dependency (run after editing pyproject.toml, then commit requirements.lock).
lock: $(INSTALLED)
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) .devstack .pytest_cache .mypy_cache .ruff_cache
