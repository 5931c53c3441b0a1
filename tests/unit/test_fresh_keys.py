"""A Stripe step that meets a saved failure under its idempotency key (a 5xx Stripe replays
to every retry, or a first use with other parameters) reads Stripe's state and goes on
under the next key of a fixed sequence; any other answer is final for that key."""

from __future__ import annotations

import pytest
import stripe
from temporalio.exceptions import ApplicationError

from activities.stripe_payments import KEYS_PER_STEP, _under_fresh_keys
from vult.domain.failures import Failure


class Step:
    def __init__(self, answers: dict[str, BaseException | str], done: str | None = None):
        self.answers, self.done = answers, done
        self.sent: list[str] = []
        self.reads = 0

    async def send(self, key: str) -> str:
        self.sent.append(key)
        answer = self.answers.get(key, f"made under {key}")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def settled(self) -> str | None:
        self.reads += 1
        return self.done


def saved_500() -> stripe.APIError:
    return stripe.APIError("An unknown error occurred", http_status=500)


async def test_a_saved_5xx_is_followed_by_a_read_and_the_next_key() -> None:
    step = Step({"k": saved_500()})
    assert await _under_fresh_keys("k", step.send, step.settled) == "made under k/fresh-2"
    assert (step.sent, step.reads) == (["k", "k/fresh-2"], 1)


async def test_work_done_before_the_5xx_is_taken_from_stripes_state_not_made_again() -> None:
    step = Step({"k": saved_500()}, done="made under k, answer lost")
    assert await _under_fresh_keys("k", step.send, step.settled) == "made under k, answer lost"
    assert step.sent == ["k"]


async def test_a_key_first_used_with_other_parameters_is_spent_too() -> None:
    other = stripe.IdempotencyError("Keys for idempotent requests ...", http_status=400)
    step = Step({"k": other})
    assert await _under_fresh_keys("k", step.send, step.settled) == "made under k/fresh-2"


@pytest.mark.parametrize(
    "answer",
    [
        stripe.IdempotencyError("another request with this key is running", http_status=409),
        stripe.InvalidRequestError("No such payment_intent", "id", http_status=404),
        stripe.APIConnectionError("timed out"),  # the answer may be saved: same key next try
    ],
)
async def test_other_failures_are_the_keys_own_and_raised_as_they_are(
    answer: BaseException,
) -> None:
    step = Step({"k": answer})
    with pytest.raises(type(answer)):
        await _under_fresh_keys("k", step.send, step.settled)
    assert (step.sent, step.reads) == (["k"], 0)


async def test_the_sequence_is_bounded_and_the_same_on_every_try() -> None:
    keys = ["k", *(f"k/fresh-{n}" for n in range(2, KEYS_PER_STEP + 1))]
    for _ in range(2):
        step = Step(dict.fromkeys(keys, saved_500()))
        with pytest.raises(ApplicationError) as raised:
            await _under_fresh_keys("k", step.send, step.settled)
        assert step.sent == keys
        # Retried later, never taken as Stripe refusing the step.
        assert raised.value.type == Failure.STRIPE_KEYS_SPENT and not raised.value.non_retryable
