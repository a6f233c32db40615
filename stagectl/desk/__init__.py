"""The producer desk: the booking store and the render farm over HTTP (docs/desk-api.md).

This module holds what every part of the desk shares and that imports nothing heavy: the
error every endpoint raises (:class:`DeskError`) and the catalogue of its messages in English
and Simplified Chinese (:data:`DESK_MESSAGES`). The app is :func:`stagectl.desk.app.create_app`,
the server :class:`stagectl.desk.server.DeskServer`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DESK_MESSAGES", "DeskError", "error_body"]

#: code -> (English, Simplified Chinese) templates; ``{...}`` fields come from ``params``.
DESK_MESSAGES: dict[str, tuple[str, str]] = {
    "bad_json": ("the request body is not valid JSON: {reason}",
                 "请求内容不是有效的 JSON：{reason}"),
    "invalid": ("{field}: {reason}", "字段 {field} 有误：{reason}"),
    "unauthenticated": ("log in first (POST /api/v1/session) or send "
                        "'Authorization: Bearer <token>'",
                        "请先登录（POST /api/v1/session）或发送令牌（Authorization: Bearer）"),
    "bad_login": ("wrong user name or password", "用户名或密码错误"),
    "bad_token": ("this API token is unknown, revoked or belongs to a disabled user",
                  "此令牌无效、已吊销，或其用户已停用"),
    "bad_scheme": ("send 'Authorization: Bearer <token>'; the {scheme} scheme is not accepted",
                   "请发送 Authorization: Bearer <令牌>；不接受 {scheme} 方式"),
    "no_feed_token": ("this feed URL lacks its ?token= (GET /api/v1/feeds gives your URLs)",
                      "此订阅地址缺少 ?token=（GET /api/v1/feeds 给出您的地址）"),
    "session_expired": ("your session has ended; log in again", "会话已结束，请重新登录"),
    "forbidden": ("this needs the {role} role; you are {user} ({have})",
                  "此操作需要“{role}”角色；您是 {user}（“{have}”）"),
    "csrf": ("missing or wrong X-CSRF-Token header (send the csrf value the login answered)",
             "缺少或错误的 X-CSRF-Token 请求头（请使用登录时返回的 csrf 值）"),
    "not_found": ("not found: {what}", "未找到：{what}"),
    "method_not_allowed": ("{method} is not allowed here", "此处不允许 {method} 方法"),
    "refused": ("refused: {reason}", "操作被拒绝：{reason}"),
    "too_large": ("the request body is larger than {limit} bytes",
                  "请求内容超过 {limit} 字节"),
    "slow_down": ("too many failed logins; try again in {seconds} s",
                  "登录失败次数过多，请 {seconds} 秒后再试"),
    "farm_unavailable": ("the render farm controller does not answer: {reason}",
                         "渲染农场控制器无响应：{reason}"),
    "farm_refused": ("the render farm controller refused: {reason}",
                     "渲染农场控制器拒绝了请求：{reason}"),
    "store_unavailable": ("the booking store cannot be used: {reason}",
                          "预订数据库无法使用：{reason}"),
    "internal": ("internal error ({ref}); it has been logged", "内部错误（{ref}），已记录日志"),
}


class DeskError(Exception):
    """An HTTP error in the contract's shape (docs/desk-api.md "Errors").

    Args:
        status: the HTTP status.
        code: a key of :data:`DESK_MESSAGES`.
        details: machine-readable extras (``field``, ``explanation``...).
        headers: extra response headers (``Retry-After``).
            Set :attr:`params_zh` for fields whose Chinese differs (a refusal's reason).
        template: the :data:`DESK_MESSAGES` key of the sentence when it is not ``code``
            (401 ``unauthenticated`` says whether a login, token or session failed).
        **params: the template's fields.
    """

    def __init__(self, status: int, code: str, details: dict[str, Any] | None = None, *,
                 headers: dict[str, str] | None = None, template: str | None = None,
                 **params: Any) -> None:
        self.status = status
        self.code = code
        self.template = template or code
        self.params_zh: dict[str, Any] = {}
        self.params = params
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.sentence("en"))

    def sentence(self, lang: str) -> str:
        """The sentence in ``lang`` (``en`` or ``zh``)."""
        en, zh = DESK_MESSAGES.get(self.template, DESK_MESSAGES["internal"])
        template = zh if lang == "zh" else en
        params = {**self.params, **self.params_zh} if lang == "zh" else self.params
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError):
            return template

    def body(self) -> dict[str, Any]:
        """``{"error": {"code", "message", "message_zh", "details"}}``."""
        return error_body(self.code, self.sentence("en"), self.sentence("zh"), self.details)


def error_body(code: str, message: str, message_zh: str,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The contract's error JSON."""
    return {"error": {"code": code, "message": message, "message_zh": message_zh,
                      "details": details or {}}}
