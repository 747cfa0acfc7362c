"""Who may do what on a secured Kafka: one principal per role, and the ACLs each needs.

- a **registry** publisher writes the raw topic, and nothing else;
- the **gateway** reads the raw topic (in its group) and writes the verified, rejected and
  alerts topics: nobody else writes the verified topic. It writes the raw topic too, for
  the registries that publish over its HTTP ingest (each event signed all the same);
- a Party's **national** adapter reads the verified topic (in its Party's group) and the
  host Parties' authorizations (read whole, without a group), and writes ITMO actions and
  alerts (a message it refused); the same principal publishes its Party's authorizations
  (``crg authorize``). The topic cannot tell one Party's writes from another's: the Party's
  signature on each authorization does;
- the **international** adapter reads ITMO actions (in its group) and writes the actions
  the international registry refused.

Everything else is refused (``allow.everyone.if.no.acl.found=false``). Topic creation and
ACLs are the operator's (a super user). ``crg topics acls`` prints the grants as
``kafka-acls.sh`` commands for a real cluster; the tests apply the same grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.streaming.topics import Topics

Role = Literal["registry", "gateway", "national", "international"]
ROLES: tuple[Role, ...] = ("registry", "gateway", "national", "international")


@dataclass(frozen=True)
class Grant:
    """Allow ``principal`` the ``operation`` on the topic or group ``name``."""

    principal: str  # "User:gateway"
    operation: Literal["Read", "Write", "Describe"]
    resource: Literal["topic", "group"]
    name: str

    def command(self, bootstrap: str, config: str = "admin.properties") -> str:
        """The ``kafka-acls.sh`` command that creates this grant."""
        return (
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {config} --add "
            f"--allow-principal {self.principal} --operation {self.operation} "
            f"--{self.resource} {self.name}"
        )


def grants(topics: Topics, role: Role, user: str, party: str | None = None) -> list[Grant]:
    """The ACLs of ``user`` acting as ``role`` (a national adapter: for ``party``)."""
    principal = f"User:{user}"

    def read(topic: str, group: str) -> list[Grant]:
        return [
            Grant(principal, "Read", "topic", topic),
            Grant(principal, "Describe", "topic", topic),
            Grant(principal, "Read", "group", group),
        ]

    def write(*names: str) -> list[Grant]:
        return [Grant(principal, op, "topic", n) for n in names for op in ("Write", "Describe")]

    if role == "registry":
        return write(topics.raw)
    if role == "gateway":
        return read(topics.raw, topics.group("gateway")) + write(
            topics.verified, topics.rejected, topics.alerts, topics.raw
        )
    if role == "national":
        if not party:
            raise ValueError("a national adapter's grants are for one Party")
        return [
            *read(topics.verified, topics.group("national", party)),
            Grant(principal, "Read", "topic", topics.authorizations),
            Grant(principal, "Describe", "topic", topics.authorizations),
            *write(topics.itmo_actions, topics.alerts, topics.authorizations),
        ]
    return read(topics.itmo_actions, topics.group("international")) + write(
        topics.itmo_actions_rejected
    )
