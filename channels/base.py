"""The channel contract: what an adapter receives, what it must return, and nothing more.

An adapter talks to one kind of provider (an SMS gateway, the WeChat API, an SMTP server, a folder).
It knows no database and no HTTP handler of ours. The engine hands it a batch of rendered messages
(at most ``max_batch``) and gets back exactly one result per message, in the same order:

    Sent(provider_message_id)        the provider accepted the message
    Retry(reason, retry_after)       a temporary problem; the engine reschedules (adapters never sleep)
    Failed(reason_code, detail)      a permanent refusal; never retried, the engine falls back

Adapters never loop, retry or sleep: retry is the engine's policy, and the durable queue reschedules.
An exception escaping ``send`` is read by the engine as ``Retry`` for every message of the batch.
Options come from ``[channels.<alias>]`` and are validated by the adapter's ``Options`` model
(``extra="forbid"``, secrets as ``SecretStr``), so a typo stops start-up instead of being ignored.
"""

from __future__ import annotations

import abc
import contextvars
import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from notifier.config import Settings

_T = TypeVar("_T")


def init_into_dict(cls: type[_T]) -> type[_T]:
    """Class decorator over ``@dataclass(frozen=True)`` for types made once for every message sent: the generated
    ``__init__`` replaced by one with the same parameters (the fields, in their order, with their defaults) that
    stores each field straight into the instance's ``__dict__``. The frozen dataclass's own sets each field through
    ``object.__setattr__``, a method wrapper bound and called per field (valgrind, a call with 12 keywords: about
    25,300 instructions for an ``OutboundMessage``, 14,100 this way). Still frozen, compared, hashed, copied by
    ``dataclasses.replace`` and printed as before. Written from the fields once, when the class is made; only
    plain fields (with a default or without) are supported, and a class with anything else is refused."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init or "__slots__" in vars(cls):
        raise TypeError(f"{cls.__name__}: init_into_dict takes a @dataclass(frozen=True) with an __init__, no slots")
    generated = inspect.signature(cls.__init__)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [spec.name for spec in fields]
    if (
        hasattr(cls, "__post_init__")
        or list(generated.parameters)[1:] != names
        or any(spec.default_factory is not dataclasses.MISSING or spec.kw_only is True for spec in fields)
        or not {"self", "stored"}.isdisjoint(names)
    ):
        raise TypeError(f"{cls.__name__}: init_into_dict supports only plain fields (a default or none)")
    namespace: dict[str, object] = {}
    parameters = []
    for spec in fields:
        if spec.default is dataclasses.MISSING:
            parameters.append(spec.name)
        else:
            namespace[f"default_{spec.name}"] = spec.default
            parameters.append(f"{spec.name}=default_{spec.name}")
    body = "".join(f"    stored[{name!r}] = {name}\n" for name in names)
    exec(f"def __init__(self, {', '.join(parameters)}):\n    stored = self.__dict__\n{body}", namespace)
    init: Any = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses assigning a method)
    return cls


@init_into_dict
@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message to one recipient; ``idempotency_key`` is stable across retries.

    Kinds ``bot`` and ``bulletin`` reach an area, not a resident: ``recipient`` is the area code,
    ``delivery_id`` the id of the area delivery, and the key reads "n<notice>-a<area>-<channel>".
    Made for every delivery sent: its ``__init__`` stores into ``__dict__`` (``init_into_dict``).
    """

    delivery_id: int
    notice_id: int
    channel: str  # channel kind: sms, wechat, wecom, email; bot, bulletin
    alias: str
    recipient: str  # phone (E.164), e-mail address, openid or userid; area code for bot and bulletin
    text: str
    idempotency_key: str  # "n<notice>-s<subscriber>-<channel>[-r1]": providers that dedupe can use it
    subject: str | None = None
    html: str | None = None
    priority: int = 0
    confirm_url: str | None = None  # the notice asks for confirmation: the signed link (SMS adapters ask for a reply)
    resend: int = 0  # 0: the delivery's message (every retry of it); 1: the reminder sent again on the same channel


@init_into_dict  # as OutboundMessage: one for every message sent
@dataclass(frozen=True)
class Sent:
    provider_message_id: str


def delivery_message_id(delivery_id: int, resend: int = 0) -> str:
    """The id an adapter records a message under when it chooses it (Kannel has none to return; bizsend and a
    generic gateway may answer none): ``d<delivery id>``, ``d<delivery id>-r<n>`` for its n-th resend (a
    reminder)."""
    return f"d{delivery_id}-r{resend}" if resend else f"d{delivery_id}"


LEGACY_NON_IDS = frozenset({"", "None"})  # what older versions recorded for a success answered without an id


def message_id_of(value: object) -> str | None:
    """The provider message id a gateway's answer holds in ``value``, as it is recorded and as a receipt names it:
    a string without its surrounding blanks, or an integer (a JSON number: WeChat's int64 msgid) in decimal. None
    for anything else: missing, null, empty, ``"None"``, a boolean, a fraction, a list or an object. No receipt
    can name such a value, and every message recorded under it would share it, so one receipt could match many.
    """
    if isinstance(value, str):
        text = value.strip()
        return None if text in LEGACY_NON_IDS else text
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True)
class Retry:
    reason: str
    retry_after: float | None = None  # seconds the provider asked us to wait, if it said
    started: bool = True  # False: nothing reached the provider (``SendWindow`` closed): not a try, sent again at once


@dataclass(frozen=True)
class Failed:
    reason_code: str  # short machine-readable code, e.g. "invalid-number", "blocked"
    detail: str = ""


SendResult = Sent | Retry | Failed


@dataclass
class SendWindow:
    """The time the engine gives one batch, set around each ``Channel.send`` (``send_window``): ``deadline`` is
    the event-loop time (``loop.time()``) by which it must have the batch's answers. An adapter starts no
    provider request it could not finish by then within its own timeouts, beyond its first turn of
    connections (``starts`` counts the requests begun), and answers that message ``Retry(started=False)``
    instead: a batch of any size then ends in time, and no message the provider had already taken is sent
    again for having been cut off. (The first turn always goes, so an adapter whose timeout exceeds the
    window still moves: as many messages a batch as it has connections.)"""

    deadline: float
    starts: int = 0


send_window: contextvars.ContextVar[SendWindow | None] = contextvars.ContextVar("send_window", default=None)


JobState = Literal["completed", "pending", "failed"]


@runtime_checkable
class JobPoller(Protocol):
    """Optional capability: a sent message whose outcome the provider reports only when asked (a print job).

    ``completed`` confirms the message (delivered), ``failed`` is a permanent failure after acceptance,
    ``pending`` means ask again later. The engine polls sent area deliveries of adapters that have it.
    """

    async def poll_job(self, provider_message_id: str) -> JobState: ...


class ChannelOptions(BaseModel):
    """Base of every adapter's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class PushedReceiptOptions(ChannelOptions):
    """The secret in the receipt URL a cloud platform pushes to (``notifier.api.cloud_sms_hooks``)."""

    hook_token: SecretStr | None = Field(
        None, description="shared secret in the receipt URL we give the platform (?token=); receipts are off without it"
    )
    hook_token_previous: SecretStr | None = Field(
        None, description="the hook secret before the last change, still accepted until the platform's URL is changed"
    )


@dataclass
class ChannelSetup:
    """What the service hands every adapter once all aliases are built, before ``open``.

    ``shared`` holds objects shared by the adapters of one process (a token cache per account),
    keyed by a name the adapter chooses; it lives as long as the loaded channels do.
    """

    settings: Settings
    adapters: Mapping[str, Channel]
    shared: dict[str, object] = field(default_factory=dict)


class Channel(abc.ABC):
    """Base class of adapters. Subclasses set ``Options`` and ``max_batch`` and implement ``send``.

    ``default_rate_per_second`` / ``default_rate_per_minute`` are the provider's documented limits,
    used when the alias's config sets none.
    """

    Options: ClassVar[type[ChannelOptions]] = ChannelOptions
    max_batch: ClassVar[int] = 100
    default_rate_per_second: ClassVar[float | None] = None
    default_rate_per_minute: ClassVar[float | None] = None

    def __init__(self, alias: str, options: ChannelOptions | None = None) -> None:
        self.alias = alias
        self.options = options if options is not None else self.Options()

    def batch_limit(self, seconds: float) -> int:
        """The most messages of one batch this adapter is sure to answer within ``seconds``, however slowly
        the provider answers within the adapter's own timeouts (never more than ``max_batch``). The engine
        claims no more than this for the time it gives a batch: a batch cut off by that time is retried
        whole, including the messages the provider had already taken."""
        del seconds
        return self.max_batch

    def prepare(self, setup: ChannelSetup) -> None:  # noqa: B027 - optional hook
        """Take what the adapter needs from the service (links, shared caches, other aliases)."""

    def covered_areas(self) -> set[str] | None:
        """Kinds ``bot`` and ``bulletin``: the area codes this adapter can reach; None means any area."""
        return None

    def area_levels(self) -> frozenset[str] | None:
        """Kinds ``bot`` and ``bulletin``: the levels (county, town, village) that get a delivery of their own;
        None means the kind's default (bot: towns and villages; bulletin: villages)."""
        return None

    def use_area_names(self, names: Mapping[str, str]) -> None:  # noqa: B027 - optional hook
        """Receive the printable names of the administrative areas ("宝都街道 恒盛社区居民委员会"), by code.

        Called by the engine at start, from the areas table, for adapters that address areas.
        """

    def gateway_text(self, text: str, confirm: bool = False) -> str:
        """The exact text the provider receives (and an SMS gateway bills) for a rendered ``text``.

        SMS adapters add their 【signature】 and opt-out wording here and send what this returns, so the
        notice preview, which calls it too, counts the parts the gateway will bill; with ``confirm`` (the
        notice asks for confirmation) also their reply wording (``回复1确认收到``).
        """
        del confirm
        return text

    def member_aliases(self) -> Sequence[str]:
        """Aliases this adapter sends through itself; the engine never routes to them directly."""
        return ()

    def reports_delivery(self) -> bool:
        """Whether the provider tells us, through a receipt hook this service has the secret of, that a message
        arrived. Only then does the engine wait ``engine.confirm_window`` for the receipt before handing the
        resident to their next channel: a message no receipt can ever confirm (e-mail, an adapter whose hook is
        not configured) would otherwise be taken for lost and doubled on the next channel."""
        return False

    def receipt_ids(self, delivery_id: int, resend: int = 0) -> Sequence[str]:
        """The message ids a receipt for this send of a delivery (``OutboundMessage.resend``) can carry, when
        the adapter chooses them before the send (Kannel's ``d<delivery id>``, ``d<delivery id>-r1`` for the
        reminder sent again); empty when the provider assigns them. A delivery whose send was never recorded
        (the process died after handing it over) is recorded from a receipt stored under one of these ids
        instead of being sent again. Each send has ids of its own: a late receipt of the first send must not
        speak for the reminder."""
        return ()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire connections or sessions; called once before the first send."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open`` acquired; called once at shutdown."""

    @abc.abstractmethod
    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        """Hand the batch to the provider; return one result per message, in order."""
