"""Deleting an account with everything it owns: `heimdex users delete` and DELETE /users/{id}."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from heimdex.accounts.base import User
from heimdex.blobs.keys import upload_prefix
from heimdex.errors import ConflictError, NotFoundError
from heimdex.logging import get_logger

if TYPE_CHECKING:
    from heimdex.accounts.service import Accounts
    from heimdex.service import Heimdex

log = get_logger(__name__)


@dataclass
class AccountDeletion:
    videos: int = 0
    deferred_videos: int = 0  # being indexed: deleted when their job ends (the API's worker)
    people: int = 0


def delete_account(
    accounts: Accounts,
    heimdex: Heimdex,
    user: User,
    delete_video: Callable[[str], bool] | None = None,
) -> AccountDeletion:
    """Delete the user's videos (with scenes, vectors, thumbnails, sidecars), people (with photos),
    unfinished direct uploads and finally the account with its tokens.

    `delete_video(video_id)` deletes one video and says whether it is gone (False: deferred until
    the worker indexing it lets go); the default deletes at once, as `heimdex delete` does.

    Order: the user is logged out everywhere first (nothing they hold works any more), then their
    data goes, then the account; a last sweep catches what a request authenticated just before the
    revocation may have added meanwhile. If deleting the data fails, the account is still there
    (logged out) and deleting it again finishes the work.
    """
    if user.is_admin and not any(u.is_admin and u.id != user.id for u in accounts.store.list_users()):
        raise ConflictError(
            f"{user.email} is the only administrator; create another one first"
            " (`heimdex users create EMAIL --admin`)"
        )
    delete_video = delete_video or (lambda video_id: _delete_now(heimdex, video_id, user.id))
    accounts.logout_everywhere(user, api_tokens=True)
    result = AccountDeletion()
    deferred: set[str] = set()
    for sweep in range(2):
        for video in heimdex.videos(user.id):
            if video.id in deferred:
                continue
            if delete_video(video.id):
                result.videos += 1
            else:
                deferred.add(video.id)
        for person in heimdex.people(user.id):
            try:
                heimdex.remove_person(person.id, user.id)
            except NotFoundError:
                continue
            result.people += 1
        heimdex.blobs.delete_prefix(upload_prefix(user.id))  # presigned uploads never completed
        if sweep == 0:
            accounts.store.delete_user(user.id)
    result.deferred_videos = len(deferred)
    log.info(
        "user.deleted",
        user_id=user.id,
        videos=result.videos,
        deferred_videos=result.deferred_videos,
        people=result.people,
    )
    return result


def _delete_now(heimdex: Heimdex, video_id: str, owner_id: str) -> bool:
    with contextlib.suppress(NotFoundError):  # deleted by someone else meanwhile
        heimdex.delete_video(video_id, owner_id)
    return True
