"""archive: the incident's files, copied to the evidence bucket where they outlive the
machine that wrote them (a Lambda's /tmp dies with the instance).

`cloudtrail.jsonl`, `report.md`, `report.json` and `log.jsonl` go to
`s3://BUCKET/incidents/<id>/`, each with its SHA-256 (S3 checks it on arrival and keeps
it) and server-side encryption. Run after collect-evidence, after each sweep and at the
end of a run, as a step appended to the incident. Never critical: an unreachable or
missing bucket leaves the files where they are, the incident completes, and the exit
code (5) and the step's error name the bucket and what went wrong.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed, StepFailed
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import EvidenceArchived
from responder.incident.shapes import ArchivedObject

FILES = ("cloudtrail.jsonl", "report.md", "report.json", "log.jsonl")
ENCRYPTION = "AES256"


def prefix(incident_id: str) -> str:
    return f"incidents/{incident_id}/"


def sha256_of(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def restore(api: Api, bucket: str, incident_id: str, path: Path) -> bool:
    """Fetch a file of the incident back from the bucket when this machine lacks it (a
    fresh Lambda instance resuming or sweeping); False when the bucket does not have it."""
    try:
        found = api.call(ApiCall("s3", "GetObject", {"Bucket": bucket,
                                                     "Key": prefix(incident_id) + path.name},
                                 counts_only=True))
    except AwsCallFailed as exc:
        if exc.code in {"NoSuchKey", "404"}:
            return False
        raise
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".restoring")
    body: BinaryIO = found["Body"]
    with partial.open("wb") as sink:
        for block in iter(lambda: body.read(1 << 20), b""):
            sink.write(block)
    partial.replace(path)
    return True


def _body(path: Path) -> Callable[[], Mapping[str, Any]]:
    """The upload's body, opened afresh for each attempt (a retry re-reads the file)."""
    return lambda: {"Body": path.open("rb")}


@register("archive_evidence")
class ArchiveEvidence(Action):
    permissions = ("s3:PutObject", "s3:GetObject")
    kind = "archive"
    result = EvidenceArchived
    critical = False

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        bucket = inp.ctx.options.evidence_bucket or "<evidence bucket>"
        return tuple(ApiCall("s3", "PutObject", {
            "Bucket": bucket, "Key": prefix(inp.incident.id) + name,
            "ChecksumSHA256": "<its sha256>", "ServerSideEncryption": ENCRYPTION},
            mutating=True, note="with --evidence-bucket or RESPONDER_EVIDENCE_BUCKET")
            for name in FILES)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        bucket = inp.ctx.options.evidence_bucket
        if not bucket:
            return StepResult.skipped("no evidence bucket (--evidence-bucket, "
                                      "RESPONDER_EVIDENCE_BUCKET)")
        directory = inp.ctx.incident_dir(inp.incident.id)
        objects: list[ArchivedObject] = []
        for name in FILES:
            path = directory / name
            if not path.is_file():
                continue
            digest = sha256_of(path)
            key = prefix(inp.incident.id) + name
            try:
                stored = api.call(
                    ApiCall("s3", "PutObject", {
                        "Bucket": bucket, "Key": key,
                        "ChecksumSHA256": base64.b64encode(digest).decode(),
                        "ServerSideEncryption": ENCRYPTION}, mutating=True),
                    unjournaled=_body(path))
            except AwsCallFailed as exc:
                raise StepFailed(self.name, f"evidence bucket {bucket}: {exc.code}: "
                                 f"{exc.aws_message}; the files stay in {directory}",
                                 detail=EvidenceArchived(
                                     bucket, prefix(inp.incident.id), tuple(objects),
                                     f"{exc.code}: {exc.aws_message}").to_detail()) from exc
            objects.append(ArchivedObject(key, digest.hex(), path.stat().st_size,
                                          stored.get("VersionId")))
        return StepResult("done", EvidenceArchived(bucket, prefix(inp.incident.id),
                                                   tuple(objects)))
