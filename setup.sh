#!/usr/bin/env bash
# Create .venv and install audiograph with its test tools.
# The CPU wheel of torch is pinned first so that no multi-GB CUDA build is pulled;
# pyproject.toml itself keeps a normal range for real users.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,spark,bench]"
