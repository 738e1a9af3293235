"""The avatar cache asks again for a picture whose download failed, after a growing pause."""

from __future__ import annotations

from PIL import Image

from client_tk.widgets.avatar import AvatarCache


def test_a_failed_download_is_asked_again_later() -> None:
    now = [100.0]
    asked: list[str] = []
    cache = AvatarCache(asked.append, clock=lambda: now[0])
    uri = "mxc://hs/pic"
    assert cache.picture(uri) is None and asked == [uri]
    assert cache.picture(uri) is None and asked == [uri]  # in flight: once
    cache.fail(uri)
    assert cache.picture(uri) is None and asked == [uri]  # not at once
    now[0] += 2.0
    assert cache.picture(uri) is None and asked == [uri, uri]  # later: again
    cache.fail(uri)
    now[0] += 2.0
    assert cache.picture(uri) is None and asked == [uri, uri]  # the pause grows
    now[0] += 2.0
    assert cache.picture(uri) is None and asked == [uri, uri, uri]
    cache.put(uri, Image.new("RGBA", (4, 4)))
    assert cache.picture(uri) is not None and uri not in cache.failed
