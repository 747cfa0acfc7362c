"""The documented reason-code table lists exactly the codes the gateway can give."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.contract import errors
from gateway.contract.reasons import Reason

DOC = Path(__file__).resolve().parents[2] / "docs" / "reason-codes.md"


def test_every_reason_code_is_documented_once() -> None:
    documented = re.findall(r"^\| `([a-z_.]+)` \|", DOC.read_text(), flags=re.MULTILINE)
    assert sorted(documented) == sorted(r.value for r in Reason)


def test_contract_errors_use_gateway_reason_codes() -> None:
    codes = {r.value for r in Reason}
    for error in vars(errors).values():
        if (
            isinstance(error, type)
            and issubclass(error, errors.ContractError)
            and error is not errors.ContractError
        ):
            assert error.reason in codes, error
