"""Celery tasks of the alerts app: thin wrappers around the engine and the notifications."""

from __future__ import annotations

from celery import Task, shared_task

from alerts import engine, holds, notifications, queue, silence


@shared_task(name="alerts.check_observation", ignore_result=True)
def check_observation_task(price_history_id: int) -> None:
    # Still runs tasks queued before the batched queue existed.
    engine.check(price_history_id)


@shared_task(name="alerts.check_pending", ignore_result=True)
def check_pending() -> None:
    queue.drain()


@shared_task(name="alerts.review_holds", ignore_result=True)
def review_holds() -> None:
    holds.review()


@shared_task(
    bind=True,
    name="alerts.send_delivery",
    ignore_result=True,
    autoretry_for=(notifications.DeliveryError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=notifications.MAX_ATTEMPTS - 1,
)
def send_delivery(self: Task, delivery_id: int) -> None:
    notifications.send(delivery_id, last_try=self.request.retries >= self.max_retries)


@shared_task(name="alerts.check_silence", ignore_result=True)
def check_silence() -> None:
    silence.check_silence()


@shared_task(name="alerts.send_digests", ignore_result=True)
def send_digests() -> None:
    notifications.send_digests()
