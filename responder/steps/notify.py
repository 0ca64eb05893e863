"""notify: tell the humans what happened and what they must do now, by SNS and/or Slack.

Never critical: a notifier that fails is recorded (the step fails, the exit code says
so) but containment is neither undone nor blocked. A completed SNS publish is journaled,
so a resumed run does not announce the same incident twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from responder.aws import Api, ApiCall, RetryPolicy
from responder.context import Options
from responder.errors import AwsCallFailed, StepFailed
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import NoticeSent
from responder.incident.shapes import Delivery
from responder.report.notice import Notice, build_notice
from responder.report.notify import NotificationError, post_slack, publish_sns

SLACK_SERVICE = "slack"
"""The planned Slack post's `service`: not an AWS service, so never an IAM permission."""
SLACK_HIDDEN = "Slack webhook (URL not shown)"
"""How a plan names the Slack channel: the webhook URL is a credential."""
NO_TARGET = "no --notify-topic, --slack-webhook, RESPONDER_SLACK_WEBHOOK or sns_topic_arn"


def targets(settings: Mapping[str, Any], options: Options) -> tuple[str | None, str | None]:
    """(SNS topic, Slack webhook): the command line wins over the playbook."""
    return options.notify_topic or settings.get("sns_topic_arn"), options.slack_webhook


def send(
    api: Api, notice: Notice, topic: str | None, webhook: str | None, retry: RetryPolicy
) -> tuple[list[Delivery], list[Delivery]]:
    """Send to every configured channel; returns (sent, failed). Never raises for delivery."""
    sent: list[Delivery] = []
    failed: list[Delivery] = []
    if topic:
        try:
            sent.append(Delivery("sns", topic, message_id=publish_sns(api, topic, notice)))
        except AwsCallFailed as exc:
            failed.append(Delivery("sns", topic, error=f"{exc.code}: {exc.aws_message}"))
    if webhook:
        try:
            sent.append(Delivery("slack", status=post_slack(webhook, notice, retry=retry)))
        except (NotificationError, ValueError) as exc:
            failed.append(Delivery("slack", error=str(exc)))
    return sent, failed


def already_published(inp: StepInput) -> Delivery | None:
    """The SNS publish an earlier attempt of this step made, if any.

    "sending" counts as sent: SNS cannot say whether a publish whose answer was lost
    arrived, and a duplicate page at 3 a.m. is worse than the report's note.
    """
    published = [c for c in inp.history
                 if c.operation == "Publish" and c.outcome in {"ok", "sending"}]
    if not published:
        return None
    return Delivery("sns", published[-1].params.get("TopicArn"),
                    message_id=(published[-1].result or {}).get("MessageId"))


def tell(inp: StepInput, api: Api, notice: Notice
         ) -> tuple[list[Delivery], list[Delivery]]:
    """Deliver `notice` to the step's channels: (sent, failed). A publish an earlier
    attempt of the step made is counted as sent, not made again."""
    topic, webhook = targets(inp.settings, inp.ctx.options)
    published = already_published(inp)
    sent, failed = send(api, notice, None if published else topic, webhook, inp.ctx.retry)
    return ([published] if published else []) + sent, failed


@register("notify")
class Notify(Action):
    permissions = ("sns:Publish",)
    kind = "notification"
    result = NoticeSent
    critical = False
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"sns_topic_arn": {"type": "string", "pattern": "^arn:aws[a-z-]*:sns:"}},
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        """One planned delivery per channel that will be told, each named in its note, so
        the dry run and the `Proceed?` plan say who hears of the incident. The Slack
        webhook is an HTTPS POST, not an AWS call (it needs no permission); its URL is a
        credential (whoever holds it can post to the channel), so it is never shown."""
        topic, webhook = targets(inp.settings, inp.ctx.options)
        calls: list[ApiCall] = []
        if topic:
            calls.append(ApiCall(
                "sns", "Publish", {"TopicArn": topic, "Subject": "<incident summary>",
                                   "Message": "<what happened, what to do next>"},
                mutating=True, note=f"tells SNS topic {topic}"))
        if webhook:
            calls.append(ApiCall(
                SLACK_SERVICE, "PostMessage", {"text": "<what happened, what to do next>"},
                mutating=True, note=f"tells the {SLACK_HIDDEN}; an HTTPS POST, not an AWS "
                "call"))
        return tuple(calls)

    def observe(self, inp: StepInput, api: Api) -> StepResult | None:
        published = already_published(inp)
        if published is None or inp.ctx.options.slack_webhook:
            return None  # Slack still to be told; run() does not publish to SNS again
        return StepResult("done", NoticeSent(sent=(published,), already=True))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        topic, webhook = targets(inp.settings, inp.ctx.options)
        if not topic and not webhook:
            return StepResult.skipped(f"{NO_TARGET} configured")
        if inp.view is None:
            raise StepFailed(self.name, "the incident is not journaled yet")
        notice = build_notice("completed", inp.view)
        sent, failed = tell(inp, api, notice)
        facts = NoticeSent(sent=tuple(sent), failed=tuple(failed),
                           next_actions=notice.next_actions)
        if failed:
            raise StepFailed(self.name, "; ".join(f"{f.channel}: {f.error}" for f in failed),
                             facts.to_detail())
        return StepResult("done", facts)
