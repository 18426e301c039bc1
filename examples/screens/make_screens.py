"""Screenshots of Orbitly error dialogs, drawn from the sample KB's error-code pages (``examples/kb/error-codes``).

    python examples/screens/make_screens.py        # writes examples/screens/*.png and manifest.json

Three looks per error page: a desktop dialog, the web app with a red banner among the app's own words
(sidebar, headings), and a terminal with the API's JSON response. ``manifest.json`` maps each picture to
the page that explains it (``bench/screens.py`` measures how often that page comes first).
Deterministic: DejaVu fonts (Debian ``fonts-dejavu-core``), no randomness.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
KB = HERE.parents[0] / "kb" / "error-codes"
FONTS = Path("/usr/share/fonts/truetype/dejavu")


def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSansMono.ttf" if mono else ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    return ImageFont.truetype(str(FONTS / name), size)


def page_facts(path: Path) -> dict[str, str]:
    text = path.read_text()
    title = re.search(r"^# (E-\d+): (.+)$", text, re.M)
    msg = re.search(r'^\*\*Message(?: shown)?:\*\* "(.+)"', text, re.M)
    http = re.search(r"^\*\*HTTP status:\*\* (\d{3}[^\n]*)", text, re.M)
    assert title and msg, path
    return {"code": title.group(1), "title": title.group(2), "message": msg.group(1),
            "http": http.group(1) if http else "", "page": f"examples/kb/error-codes/{path.name}"}


def dialog(f: dict[str, str]) -> Image.Image:
    img = Image.new("RGB", (1280, 720), (58, 92, 140))
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = 250, 170, 1030, 520
    d.rectangle((x0 + 6, y0 + 6, x1 + 6, y1 + 6), fill=(30, 40, 60))
    d.rectangle((x0, y0, x1, y1), fill=(250, 250, 250), outline=(120, 120, 120))
    d.rectangle((x0, y0, x1, y0 + 44), fill=(232, 232, 236))
    d.text((x0 + 16, y0 + 11), "Orbitly", font=font(20, bold=True), fill=(40, 40, 40))
    d.ellipse((x0 + 30, y0 + 80, x0 + 90, y0 + 140), fill=(200, 40, 40))
    d.text((x0 + 53, y0 + 88), "!", font=font(40, bold=True), fill=(255, 255, 255))
    d.text((x0 + 120, y0 + 78), f["title"], font=font(30, bold=True), fill=(30, 30, 30))
    y = y0 + 130
    for ln in textwrap.wrap(f["message"], 46):
        d.text((x0 + 120, y), ln, font=font(22), fill=(50, 50, 50))
        y += 32
    d.text((x0 + 120, y + 14), f"Error code: {f['code']}", font=font(20), fill=(90, 90, 90))
    d.rectangle((x1 - 150, y1 - 64, x1 - 30, y1 - 20), fill=(40, 100, 200))
    d.text((x1 - 108, y1 - 55), "OK", font=font(22, bold=True), fill=(255, 255, 255))
    return img


def banner(f: dict[str, str]) -> Image.Image:
    img = Image.new("RGB", (1366, 768), (246, 247, 249))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 230, 768), fill=(33, 37, 48))
    d.text((24, 24), "Orbitly", font=font(26, bold=True), fill=(255, 255, 255))
    for i, item in enumerate(["Home", "Projects", "Tasks", "Docs", "Reports", "Settings"]):
        d.text((28, 100 + i * 44), item, font=font(20), fill=(200, 204, 214))
    d.text((270, 30), "Projects / Website relaunch", font=font(24, bold=True), fill=(30, 30, 30))
    d.rectangle((260, 90, 1340, 190), fill=(253, 236, 236), outline=(210, 60, 60), width=2)
    d.text((285, 104), f"{f['code']}  {f['title']}", font=font(24, bold=True), fill=(170, 30, 30))
    d.text((285, 146), textwrap.shorten(f["message"], 90), font=font(19), fill=(120, 30, 30))
    for i, row in enumerate(["Homepage copy review", "Pricing page", "Launch checklist", "QA pass"]):
        y = 230 + i * 56
        d.rectangle((260, y, 1340, y + 44), fill=(255, 255, 255), outline=(225, 225, 230))
        d.text((280, y + 11), row, font=font(19), fill=(60, 60, 60))
    return img


def terminal(f: dict[str, str]) -> Image.Image:
    img = Image.new("RGB", (1200, 640), (24, 26, 30))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 1200, 34), fill=(52, 54, 60))
    d.text((16, 7), "bash - api-client", font=font(16), fill=(220, 220, 220))
    status = f["http"] or "400 Bad Request"
    lines = ["$ ./sync-tasks.sh --project website", f"HTTP/1.1 {status}", "Content-Type: application/json", "",
             json.dumps({"error": {"code": f["code"], "message": f["title"]}}), "",
             "sync failed, see the error above"]
    for i, ln in enumerate(lines):
        d.text((20, 60 + i * 30), ln, font=font(20, mono=True), fill=(120, 230, 140) if i == 0 else (230, 230, 230))
    return img


def main() -> None:
    manifest = []
    for path in sorted(KB.glob("e-*.md")):
        f = page_facts(path)
        for look, draw in (("dialog", dialog), ("banner", banner), ("terminal", terminal)):
            name = f"{f['code'].lower()}-{look}.png"
            draw(f).save(HERE / name, optimize=True)
            manifest.append({"file": name, "code": f["code"], "look": look, "page": f["page"]})
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest)} screenshots in {HERE}")


if __name__ == "__main__":
    main()
