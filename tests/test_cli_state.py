"""`--state dynamodb://TABLE` reaches the table the way every other call reaches AWS."""

from __future__ import annotations

from collections.abc import Callable

import boto3
from conftest import CliResult

from responder.journal.dynamodb import DynamoDbJournal


def test_dynamodb_journal_honours_region(moto_server: str,
                                         cli: Callable[..., CliResult]) -> None:
    """A journal table that exists only in eu-west-1 is found with --region eu-west-1 (it
    used to be looked up in the default region whatever --region said); looked for in the
    wrong region, it is bad input said in one line, not a traceback."""
    client = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=moto_server)
    DynamoDbJournal.create_table(client, "journal-eu")
    found = cli("status", "--state", "dynamodb://journal-eu", "--region", "eu-west-1",
                "--output", "json")
    assert found.code == 0, found.stderr
    assert found.json() == {"incidents": []}
    elsewhere = cli("status", "--state", "dynamodb://journal-eu")
    assert elsewhere.code == 2
    assert elsewhere.stderr.strip().splitlines() == [
        "respond: --state dynamodb://journal-eu: no such DynamoDB table in us-east-1 (pass "
        "--region/--profile where the journal table is)"]
