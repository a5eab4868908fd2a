# `make serve`: install everything, then run the server on its embedded defaults.
# `make test`:  install everything (with the test tools), then run the whole test suite.

.PHONY: serve test install install-test bench

serve: .venv/.installed
	.venv/bin/sogni-intelligence serve

test: .venv/.installed-test
	scripts/test.sh

bench: .venv/.installed
	.venv/bin/python benchmarks/bench_chat.py

install: .venv/.installed
install-test: .venv/.installed-test

.venv/.installed: pyproject.toml scripts/install.sh
	scripts/install.sh
	touch $@

.venv/.installed-test: pyproject.toml scripts/install.sh
	scripts/install.sh --test
	touch $@ .venv/.installed
