import pytest
from pydantic import ValidationError

from sogni_intelligence.api.chat_completions.protocol import ChatCompletionRequest, NamedToolChoice

USER = [{"role": "user", "content": "hi"}]


def test_sogni_fields_accept_snake_and_camel_case() -> None:
    snake = ChatCompletionRequest.model_validate(
        {
            "messages": USER,
            "sogni_tools": "creative-agent",
            "task_profile": "coding",
            "safe_content_filter": False,
            "billing_mode": "tokens",
        }
    )
    camel = ChatCompletionRequest.model_validate(
        {
            "messages": USER,
            "sogniTools": "creative-agent",
            "taskProfile": "coding",
            "safeContentFilter": False,
            "billingMode": "tokens",
        }
    )
    for request in (snake, camel):
        assert request.sogni_tools == "creative-agent"
        assert request.task_profile == "coding"
        assert request.safe_content_filter is False
        assert request.billing_mode == "tokens"


def test_nulls_mean_missing() -> None:
    request = ChatCompletionRequest.model_validate(
        {"messages": USER, "model": None, "temperature": None, "tools": None}
    )
    assert request.model is None and request.temperature is None and request.tools is None


def test_parts_and_named_tool_choice_parse() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "messages": [
                {"role": "developer", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    ],
                },
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "max_completion_tokens": 9,
        }
    )
    assert isinstance(request.tool_choice, NamedToolChoice)
    assert request.token_limit == 9


@pytest.mark.parametrize(
    "extra",
    [
        {"temperature": 2.5},
        {"temperature": -0.1},
        {"top_p": 1.5},
        {"max_tokens": -1},
        {"max_tokens": 0},
        {"n": 2},
        {"min_p": 2},
        {"presence_penalty": 3},
        {"tool_choice": "sometimes"},
        {"response_format": {"type": "json_schema"}},
        {"response_format": {"type": "xml"}},
        {"stop": ["s"] * 17},
    ],
)
def test_out_of_range_values_are_rejected(extra: dict) -> None:
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"messages": USER, **extra})


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "robot", "content": "x"}],
        [{"role": "tool", "content": "x"}],  # no tool_call_id
        [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}],
        [{"role": "user", "content": "x", "tool_calls": [{"id": "1", "function": {"name": "f"}}]}],
    ],
)
def test_bad_messages_are_rejected(messages: list) -> None:
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"messages": messages})
