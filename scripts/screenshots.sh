#!/usr/bin/env bash
# Screenshots of every console panel in English and Chinese, saved under docs/screenshots/
# (offscreen Qt: no display needed). Needs the dev venv (`make venv`) and, for the Chinese
# shots, a CJK font (Debian: fonts-noto-cjk).
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
.venv/bin/python scripts/screenshots.py "$@"
# the producer desk's page, in a real Chromium (Playwright), saved by its own test
STAGECTL_SCREENSHOTS=1 .venv/bin/python -m pytest -q tests/desk/test_page.py
