/* test_static_mime.c — unit tests for the extension-to-media-type lookup. */
#include <criterion/criterion.h>

#include <string.h>

#include "../../src/static/mime.h"

#define U "; charset=utf-8"

struct mime_case {
    const char *name;
    const char *type;
};

/* One name per table entry, in the table's order. Looking each one up checks
 * that the table is sorted: bisection misses entries of an unsorted table. */
static const struct mime_case every[] = {
    {"x.7z", "application/x-7z-compressed"},
    {"x.aac", "audio/aac"},
    {"x.apk", "application/vnd.android.package-archive"},
    {"x.apng", "image/apng"},
    {"x.atom", "application/atom+xml" U},
    {"x.avi", "video/x-msvideo"},
    {"x.avif", "image/avif"},
    {"x.bin", "application/octet-stream"},
    {"x.bmp", "image/bmp"},
    {"x.bz2", "application/x-bzip2"},
    {"x.c", "text/plain" U},
    {"x.cc", "text/plain" U},
    {"x.cjs", "text/javascript" U},
    {"x.conf", "text/plain" U},
    {"x.cpp", "text/plain" U},
    {"x.css", "text/css" U},
    {"x.csv", "text/csv" U},
    {"x.deb", "application/vnd.debian.binary-package"},
    {"x.diff", "text/plain" U},
    {"x.dmg", "application/x-apple-diskimage"},
    {"x.doc", "application/msword"},
    {"x.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"x.eot", "application/vnd.ms-fontobject"},
    {"x.eps", "application/postscript"},
    {"x.epub", "application/epub+zip"},
    {"x.exe", "application/vnd.microsoft.portable-executable"},
    {"x.flac", "audio/flac"},
    {"x.flv", "video/x-flv"},
    {"x.gif", "image/gif"},
    {"x.glb", "model/gltf-binary"},
    {"x.glsl", "text/plain" U},
    {"x.gltf", "model/gltf+json"},
    {"x.go", "text/plain" U},
    {"x.gz", "application/gzip"},
    {"x.h", "text/plain" U},
    {"x.heic", "image/heic"},
    {"x.heif", "image/heif"},
    {"x.hpp", "text/plain" U},
    {"x.htm", "text/html" U},
    {"x.html", "text/html" U},
    {"x.ico", "image/x-icon"},
    {"x.ics", "text/calendar" U},
    {"x.ini", "text/plain" U},
    {"x.iso", "application/x-iso9660-image"},
    {"x.jar", "application/java-archive"},
    {"x.java", "text/plain" U},
    {"x.jpeg", "image/jpeg"},
    {"x.jpg", "image/jpeg"},
    {"x.js", "text/javascript" U},
    {"x.json", "application/json" U},
    {"x.jsonld", "application/ld+json" U},
    {"x.jxl", "image/jxl"},
    {"x.log", "text/plain" U},
    {"x.lz4", "application/x-lz4"},
    {"x.m3u8", "application/vnd.apple.mpegurl"},
    {"x.m4a", "audio/mp4"},
    {"x.m4v", "video/mp4"},
    {"x.map", "application/json" U},
    {"x.md", "text/markdown" U},
    {"x.mid", "audio/midi"},
    {"x.midi", "audio/midi"},
    {"x.mjs", "text/javascript" U},
    {"x.mkv", "video/x-matroska"},
    {"x.mov", "video/quicktime"},
    {"x.mp3", "audio/mpeg"},
    {"x.mp4", "video/mp4"},
    {"x.mpd", "application/dash+xml"},
    {"x.mpeg", "video/mpeg"},
    {"x.mpg", "video/mpeg"},
    {"x.msi", "application/x-msi"},
    {"x.odg", "application/vnd.oasis.opendocument.graphics"},
    {"x.odp", "application/vnd.oasis.opendocument.presentation"},
    {"x.ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"x.odt", "application/vnd.oasis.opendocument.text"},
    {"x.oga", "audio/ogg"},
    {"x.ogg", "audio/ogg"},
    {"x.ogv", "video/ogg"},
    {"x.opus", "audio/ogg"},
    {"x.otf", "font/otf"},
    {"x.patch", "text/plain" U},
    {"x.pdf", "application/pdf"},
    {"x.png", "image/png"},
    {"x.ppt", "application/vnd.ms-powerpoint"},
    {"x.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"x.ps", "application/postscript"},
    {"x.psd", "image/vnd.adobe.photoshop"},
    {"x.py", "text/plain" U},
    {"x.rar", "application/vnd.rar"},
    {"x.rpm", "application/x-rpm"},
    {"x.rs", "text/plain" U},
    {"x.rss", "application/rss+xml" U},
    {"x.rtf", "application/rtf"},
    {"x.sh", "text/plain" U},
    {"x.srt", "application/x-subrip"},
    {"x.svg", "image/svg+xml" U},
    {"x.tar", "application/x-tar"},
    {"x.tgz", "application/gzip"},
    {"x.tif", "image/tiff"},
    {"x.tiff", "image/tiff"},
    {"x.toml", "text/plain" U},
    {"x.torrent", "application/x-bittorrent"},
    {"x.ts", "video/mp2t"},
    {"x.tsv", "text/tab-separated-values" U},
    {"x.ttf", "font/ttf"},
    {"x.txt", "text/plain" U},
    {"x.vcf", "text/vcard" U},
    {"x.vtt", "text/vtt" U},
    {"x.wasm", "application/wasm"},
    {"x.wav", "audio/wav"},
    {"x.weba", "audio/webm"},
    {"x.webm", "video/webm"},
    {"x.webmanifest", "application/manifest+json" U},
    {"x.webp", "image/webp"},
    {"x.wgsl", "text/wgsl" U},
    {"x.wmv", "video/x-ms-wmv"},
    {"x.woff", "font/woff"},
    {"x.woff2", "font/woff2"},
    {"x.xhtml", "application/xhtml+xml" U},
    {"x.xls", "application/vnd.ms-excel"},
    {"x.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"x.xml", "application/xml" U},
    {"x.xsl", "application/xml" U},
    {"x.xz", "application/x-xz"},
    {"x.yaml", "application/yaml"},
    {"x.yml", "application/yaml"},
    {"x.zip", "application/zip"},
    {"x.zst", "application/zstd"},
};

Test(http_mime, every_entry_is_found, .timeout = 10)
{
    size_t n = sizeof every / sizeof every[0];
    cr_expect_geq(n, 80);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(static_mime_type(every[i].name, strlen(every[i].name)), every[i].type, "%s",
                         every[i].name);
}

/* The types the brief names, spelled out once more with their charset rule. */
static const struct mime_case named[] = {
    {"index.html", "text/html" U},
    {"app.js", "text/javascript" U},
    {"mod.mjs", "text/javascript" U},
    {"data.json", "application/json" U},
    {"app.js.map", "application/json" U},
    {"feed.xml", "application/xml" U},
    {"page.xhtml", "application/xhtml+xml" U},
    {"feed.rss", "application/rss+xml" U},
    {"feed.atom", "application/atom+xml" U},
    {"site.webmanifest", "application/manifest+json" U},
    {"logo.svg", "image/svg+xml" U},
    {"meta.jsonld", "application/ld+json" U},
    {"style.css", "text/css" U},
    {"a.txt", "text/plain" U},
    {"README.md", "text/markdown" U},
    {"t.csv", "text/csv" U},
    {"t.tsv", "text/tab-separated-values" U},
    {"cal.ics", "text/calendar" U},
    {"card.vcf", "text/vcard" U},
    {"subs.vtt", "text/vtt" U},
    {"photo.png", "image/png"},
    {"photo.jpg", "image/jpeg"},
    {"photo.jpeg", "image/jpeg"},
    {"font.woff2", "font/woff2"},
    {"mod.wasm", "application/wasm"},
    {"song.mp3", "audio/mpeg"},
    {"clip.mp4", "video/mp4"},
    {"seg.ts", "video/mp2t"},
    {"live.m3u8", "application/vnd.apple.mpegurl"},
    {"doc.pdf", "application/pdf"},
    {"a.tar.gz", "application/gzip"},
    {"blob.bin", STATIC_MIME_DEFAULT},
};

Test(http_mime, named_types, .timeout = 10)
{
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        cr_expect_str_eq(static_mime_type(named[i].name, strlen(named[i].name)), named[i].type, "%s",
                         named[i].name);
}

static const struct mime_case edges[] = {
    /* Case does not matter. */
    {"INDEX.HTML", "text/html" U},
    {"Photo.JpEg", "image/jpeg"},
    {"font.WOFF2", "font/woff2"},
    /* Only the last dot of the last component counts. */
    {"/var/www/site/index.html", "text/html" U},
    {"archive.tar.GZ", "application/gzip"},
    {"a.html.bak", STATIC_MIME_DEFAULT},
    {"dir.html/file", STATIC_MIME_DEFAULT},
    {"dir.d/", STATIC_MIME_DEFAULT},
    {"dir.d/x.css", "text/css" U},
    {"a/b.c/d.png", "image/png"},
    /* No extension. */
    {"", STATIC_MIME_DEFAULT},
    {"README", STATIC_MIME_DEFAULT},
    {"Makefile", STATIC_MIME_DEFAULT},
    {"file.", STATIC_MIME_DEFAULT},
    {".", STATIC_MIME_DEFAULT},
    {"..", STATIC_MIME_DEFAULT},
    {"/", STATIC_MIME_DEFAULT},
    /* A dot file is a name, not an extension. */
    {".html", STATIC_MIME_DEFAULT},
    {"dir/.css", STATIC_MIME_DEFAULT},
    {".config.json", "application/json" U},
    /* Unknown, too long, or not ASCII. */
    {"x.unknown", STATIC_MIME_DEFAULT},
    {"x.htmlx", STATIC_MIME_DEFAULT},
    {"x.htm", "text/html" U},
    {"x.ht", STATIC_MIME_DEFAULT},
    {"x.webmanifestwebmanifest", STATIC_MIME_DEFAULT},
    {"x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", STATIC_MIME_DEFAULT},
    {"x.\xc3\xa9", STATIC_MIME_DEFAULT},
    {"x.j\xd3", STATIC_MIME_DEFAULT},
    {"x.0", STATIC_MIME_DEFAULT},
    {"x.zzzz", STATIC_MIME_DEFAULT},
    {"x.!", STATIC_MIME_DEFAULT},
};

Test(http_mime, edges, .timeout = 10)
{
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        cr_expect_str_eq(static_mime_type(edges[i].name, strlen(edges[i].name)), edges[i].type,
                         "\"%s\"", edges[i].name);
}

/* Only len bytes are read, and a NUL inside the extension is not a terminator. */
Test(http_mime, length_bounds, .timeout = 10)
{
    cr_expect_str_eq(static_mime_type("index.html.gz", 10), "text/html" U);
    cr_expect_str_eq(static_mime_type("index.html", 9), "text/html" U); /* "index.htm" */
    cr_expect_str_eq(static_mime_type("index.html", 7), "text/plain" U); /* "index.h" */
    cr_expect_str_eq(static_mime_type("index.html", 6), STATIC_MIME_DEFAULT); /* "index." */
    cr_expect_str_eq(static_mime_type("x.js\0", 5), STATIC_MIME_DEFAULT);
    cr_expect_str_eq(static_mime_type("x.j\0s", 5), STATIC_MIME_DEFAULT);
    cr_expect_str_eq(static_mime_type(NULL, 0), STATIC_MIME_DEFAULT);
}
