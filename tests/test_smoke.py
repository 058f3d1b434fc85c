from conftest import run_cli


def test_demo_figures(demo_db: str) -> None:
    import json
    result = run_cli("status", "--json", db=demo_db)
    assert result.code == 0, result.err
    counts = json.loads(result.out)["counts"]
    assert counts["user"] == 10 and counts["document"] == 5 and counts["workflow"] == 4
