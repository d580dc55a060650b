"""The mypyc build of the message path (``make compile``): the package finds its data whether its modules
run compiled or as Python (afgw_compiled decides which; tests/afgw_compiled)."""

from __future__ import annotations

from pathlib import Path

import rules
from rules.homophones import TABLE, fold_squeezed
from rules.normalise import domains, normalise


def test_the_data_files_are_found_beside_the_package() -> None:
    # a compiled module's __file__ is not its own path: the tables are found from the package's
    assert Path(rules.__file__).resolve().parent / "homophones.json" == TABLE
    assert TABLE.exists()
    assert fold_squeezed("安全帐户") == fold_squeezed("鞍全账护")
    assert domains(normalise("登录 pay-refund.buzz 领取")) == ("pay-refund.buzz",)  # a TLD of data/signals.json
