#!/usr/bin/env python3
"""Regenerates courrier/capture/data/caniemail.json, the caniemail.com support data behind
``GET /api/v1/message/{ID}/html-check`` (courrier/capture/htmlcheck.py), from a pinned release of the npm package
``caniemail`` (github.com/shellscape/caniemail, MIT; the data is caniemail.com's, CC BY 4.0), which ships
caniemail.com's API file (``data/caniemail.json``, api_version 1.x — the file Mailpit embeds as
``internal/htmlcheck/caniemail-data.json``).

    python3 contrib/update-caniemail.py [VERSION]      # needs npm; default: the pinned version below

Only the fields the check reads are kept (slug, title, description, url, category, tags, keywords, stats,
notes_by_num; nicenames), written compactly. Nothing here is edited by hand: change PINNED and run it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PINNED = "2.0.2"
OUT = Path(__file__).resolve().parent.parent / "courrier" / "capture" / "data" / "caniemail.json"
KEEP = ("slug", "title", "description", "url", "category", "tags", "keywords", "stats", "notes_by_num")


def main() -> int:
    version = sys.argv[1] if len(sys.argv) > 1 else PINNED
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"caniemail@{version}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        (tgz,) = Path(tmp).glob("caniemail-*.tgz")
        with tarfile.open(tgz) as tar:
            f = tar.extractfile("package/data/caniemail.json")
            assert f is not None, "package/data/caniemail.json missing from the package"
            src = json.load(f)
    out = {
        "source": f"npm caniemail@{version}",
        "api_version": src["api_version"],
        "last_update_date": src["last_update_date"],
        "nicenames": src["nicenames"],
        "data": [{k: d.get(k) for k in KEEP} for d in src["data"]],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(out['data'])} features, caniemail data of {out['last_update_date']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
