import pytest
from test_cli_blackbox import BAD_CASES, JSON_CASES

@pytest.mark.parametrize("name", list(BAD_CASES))
def test_peek(name, server_account, cli, tmp_path):
    case = BAD_CASES[name](server_account, tmp_path)
    r = cli(*case.args, env=case.env)
    print(f"\n== {name} code={r.code}\nSTDERR: {r.stderr!r}\nSTDOUT: {r.stdout!r}")
    if name in JSON_CASES:
        r = cli(*case.args, "--output", "json", env=case.env)
        print(f"JSON: {r.stdout!r}")

def test_happy(server_account, cli):
    r = cli("compromised", server_account.leaked_key, "--yes", "--output", "json")
    print("STDERR:", r.stderr)
    print(r.stdout[:3000])
    r = cli("compromised", server_account.leaked_key, "--yes")
    print("HUMAN2:", r.code, r.stdout, r.stderr)
    r = cli("status")
    print(r.stdout)
    r = cli("compromised", server_account.leaked_key, "--dry-run")
    print(r.stdout, r.stderr)
