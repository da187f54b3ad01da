"""docs/training.md's flag table is the one generated from training/config.py (issue 24), as
the README's model tables are generated: a setting added, renamed or re-documented there must
reach the document (`python -m training.flags_doc`)."""

from training import config as config_lib
from training import flags_doc


def test_flag_table_in_the_doc_is_the_generated_one():
    text = flags_doc.DOC.read_text()
    assert flags_doc.generated(text) == text, "run python -m training.flags_doc"
    table = flags_doc.table()
    for field in config_lib.flag_settings():  # every flag, once
        assert table.count(f"| `--{field.name}` |") == 1, field.name
