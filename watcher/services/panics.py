"""Staff lift an agent's panic from its live page: the IP blocks go, the agent is told to resume,
and who did it is recorded in the agent's admin history.

Its own module because it needs both the agents' blocks and the commands (``commands`` already
depends on ``agents`` through ``connections``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.utils.translation import gettext

from watcher.models import Agent, AgentStatus, CommandAction, PanicBlock
from watcher.services import agents, commands, events
from watcher.services.errors import NotFound, Unavailable


@dataclass(frozen=True)
class PanicCleared:
    """What clearing did: the IPs lifted and whether the agent was told to resume."""

    ips: list[str] = field(default_factory=list)
    resumed: bool = False
    connected: bool = True

    def describe(self) -> str:
        """One sentence or three, for the operator and for the agent's history."""
        parts = [gettext("Panic cleared.")]
        if self.ips:
            parts.append(gettext("IP blocks lifted: %(ips)s.") % {"ips": ", ".join(self.ips)})
        if self.resumed:
            parts.append(gettext("“Resume” sent."))
        elif not self.connected:
            parts.append(
                gettext("The agent is not connected: it stays in panic until it gets “resume”.")
            )
        return " ".join(parts)


def _record(user: Any, agent: Agent, message: str) -> None:
    # The agent's admin history (LogEntry's public API): who, when and what.
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[agent], action_flag=CHANGE, change_message=message,
        single_object=True,
    )  # fmt: skip


def _lift(agent: Agent, blocks: list[PanicBlock]) -> list[str]:
    agents.clear_blocks([b.pk for b in blocks])
    events.blocks_changed(agent, list(agents.blocks_of(agent)))
    return sorted({str(b.ip) for b in blocks})


def clear_panic(agent: Agent, user: Any) -> PanicCleared:
    """Lift the agent's IP blocks and, if it is in panic and connected, send it ``resume``
    (the agent leaves panic itself: it keeps its panic across restarts until told)."""
    ips = _lift(agent, list(agents.blocks_of(agent)))
    resumed, connected = False, True
    if agent.status == AgentStatus.PANIC:
        try:
            commands.send_command(agent, CommandAction.RESUME, {}, user)
            resumed = True
        except (Unavailable, NotFound):  # not connected, or deleted meanwhile: no resume
            connected = False
    done = PanicCleared(ips=ips, resumed=resumed, connected=connected)
    _record(user, agent, done.describe())
    return done


def unblock_ip(agent: Agent, block_id: int, user: Any) -> str:
    """Lift one IP block shown on the agent's page; its IP. ``NotFound`` if it is not one of
    the agent's blocks in force (cleared meanwhile, or another agent's)."""
    block = agents.blocks_of(agent).filter(pk=block_id).first()
    if block is None:
        raise NotFound(gettext("This IP block is no longer in force."))
    (ip,) = _lift(agent, [block])
    _record(user, agent, gettext("IP block lifted: %(ip)s.") % {"ip": ip})
    return ip
