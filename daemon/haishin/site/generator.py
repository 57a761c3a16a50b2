"""The generator that writes the registry's pages: home, departments, one page per channel
with its QR code and back numbers, notices, feeds, the 404 page and the sitemap."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pelican.generators import Generator

from .. import urls
from .archive import Post, last_sent, merged, read_posts, unknown_folders
from .feeds import notice_items
from .loaded import SETTINGS_KEY, Loaded
from .qr import write_qr
from .sitemap import write_sitemap
from .view import ChannelView

log = logging.getLogger(__name__)


class RegistryGenerator(Generator):  # type: ignore[misc]  # Pelican is untyped
    loaded: Loaded
    posts: dict[str, list[Post]]

    def generate_context(self) -> None:
        self.loaded = self.settings[SETTINGS_KEY]
        site = self.loaded.site
        archive = self.loaded.options.archive
        stored = self.loaded.options.stored
        public = [c.slug for c in site.channels if c.archive_public]
        self.posts = read_posts(self.readers, archive, public)
        if stored is not None:
            self.posts = merged(self.posts, read_posts(self.readers, stored, public))
        for name in unknown_folders(archive, self.loaded.registry.channels):
            log.warning("バックナンバーのフォルダ %s に当たるチャネルがありません", archive / name)
        # Shared context: Pelican's page generator renders the hand-written pages with our
        # base template, which needs the service's name and inquiry address.
        self.context["site"] = site
        # 最終配信日 of each channel (第5条4), on the channel page and in the lists
        self.context["last_sent"] = {
            c.slug: last_sent(archive, c.slug, self.posts.get(c.slug, [])) for c in site.channels
        }

    def generate_output(self, writer: Any) -> None:
        site = self.loaded.site
        relative = self.settings["RELATIVE_URLS"]
        written: list[str] = []

        def page(name: str, template: str, **kwargs: Any) -> None:
            writer.write_file(name, self.get_template(template), self.context, relative, **kwargs)
            written.append(name)

        # one QR for the whole site: an empty mail to mypage@ (issue 14)
        self.context["mypage_qr_size"] = write_qr(
            site.mypage_mailto, Path(self.output_path) / site.mypage_qr
        )
        page(urls.INDEX, "index", page_name="index")
        page(urls.DEPARTMENTS, "departments", page_name="departments")
        page(urls.NOTICES, "notices", page_name="notices")
        for channel in site.channels:
            posts = self.posts.get(channel.slug, [])
            recent = posts[: self.loaded.options.recent_posts]
            qr_size = write_qr(channel.mailto, Path(self.output_path) / channel.qr)
            page(
                channel.url,
                "channel",
                channel=channel,
                posts=recent,
                all_posts=posts,
                qr_size=qr_size,
            )
            if channel.archive_public:
                page(channel.backnumbers_url, "backnumbers", channel=channel, posts=posts)
                for post in posts:
                    page(post.save_as, "post", channel=channel, post=post)
                self._channel_feed(writer, channel, posts)

        self._notices_feed(writer)
        self._not_found(writer)
        written += [p.url for p in self.context.get("pages", [])]
        write_sitemap(Path(self.output_path) / "sitemap.xml", site.site_url, written)
        robots = f"User-agent: *\nAllow: /\nSitemap: {site.site_url}/sitemap.xml\n"
        (Path(self.output_path) / "robots.txt").write_text(robots, encoding="utf-8")

    def _absolute_context(self) -> dict[str, Any]:
        # Feeds are read outside the site, so their links are absolute, from service.yaml.
        context = dict(self.context)
        context["SITEURL"] = context["FEED_DOMAIN"] = self.loaded.site.site_url
        context["SITENAME"] = self.loaded.site.service_name
        return context

    def _channel_feed(self, writer: Any, channel: ChannelView, posts: list[Post]) -> None:
        writer.write_feed(posts, self._absolute_context(), channel.feed, feed_title=channel.title)

    def _notices_feed(self, writer: Any) -> None:
        items = notice_items(self.loaded.site.notices)
        writer.write_feed(
            items, self._absolute_context(), urls.NOTICES_FEED, feed_title="運用停止のお知らせ"
        )

    def _not_found(self, writer: Any) -> None:
        # The 404 page is served at any depth, so its links start at the site's root path.
        root = urlsplit(self.loaded.site.site_url).path.rstrip("/")
        context = dict(self.context, SITEURL=root)
        writer.write_file("404.html", self.get_template("404"), context, False)
