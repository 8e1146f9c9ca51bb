#!/usr/bin/env python3
"""URL lists for bench/search.sh: the search query mix and the product pages, over the
synthetic store of `slipway demo --synthetic N` (crates/slipway/src/demo.rs,
load_synthetic), and a check that a running Slipway answers them.

    search-urls.py generate N OUTDIR   writes OUTDIR/<bench>.txt, one path a line
    search-urls.py check ADDR FILE...  GETs every path of each FILE once (keep-alive),
                                       fails unless all answer 200; prints a summary

Benches (each file is one wrk run; see bench/README.md for the mix):

    api           197 distinct GET /api/v1/search queries, repeated in turn (warm)
    api_cold      the same kinds of searches, no request repeating another's search
    html          the same queries against GET /search (the HTML page)
    html_cold     ditto, never repeating
    suggest       186 typeahead prefixes, GET /api/v1/search/suggest?q=
    suggest_cold  ~115,000 distinct typeahead prefixes, never repeating
    product       500 distinct product pages /products/vendorNN/<slug>, in turn
    product_cold  the other 99,500 product pages in a shuffled order (starting over
                  when a run gets through them: no page is asked for twice in a pass)
    healthz       GET /healthz: the floor (routing, HTTP and wrk itself)

The server caches identical searches (crates/slipway-catalog/src/cache.rs),
keyed by the parsed search: words after plural folding and spelling correction,
filters, sort, offset and limit. A cold list therefore changes what goes into that
key: each pass over the mix moves its searches to other words of the vocabulary
(`rotate`), and a search that would still repeat gets the next variant of its key
(`cold_lists`): a filter every synthetic product passes, another page size (API) or
the next page.
"""

import http.client
import random
import re
import sys
import time
from urllib.parse import quote, urlencode

ADJECTIVES = ["rapid", "secure", "quiet", "elastic", "atomic", "golden", "silent", "bright", "polar", "swift",
              "lunar", "solid", "vivid", "urban", "noble", "prime", "clever", "steady", "cosmic", "modular"]
NOUNS = ["database", "gateway", "cache", "proxy", "scanner", "broker", "runner", "vault", "tracker", "indexer",
         "router", "monitor", "builder", "store", "engine", "mesh", "agent", "server", "pipeline", "notebook"]
DOMAINS = ["payments", "logistics", "healthcare", "retail", "gaming", "media", "telemetry", "search", "billing",
           "identity", "messaging", "analytics", "backups", "images", "video", "maps", "weather", "energy",
           "finance", "education"]
CATEGORIES = ["analytics", "application-frameworks", "application-infrastructure", "base-images",
              "business-software", "databases", "devops-tools", "messaging", "monitoring", "networking",
              "operating-systems", "programming-languages", "security", "storage", "web-servers"]
# Misspellings (typed word, the word it is corrected to): drops, swaps, doubles.
MISSPELT = [("databse", "database"), ("gatway", "gateway"), ("scaner", "scanner"), ("brokr", "broker"),
            ("monitr", "monitor"), ("pipline", "pipeline"), ("secuer", "secure"), ("elastc", "elastic"),
            ("paymnets", "payments"), ("logistcs", "logistics"), ("helthcare", "healthcare"),
            ("telemetri", "telemetry"), ("analytcs", "analytics"), ("identiy", "identity"),
            ("messagng", "messaging"), ("notebok", "notebook"), ("trackr", "tracker"), ("indexr", "indexer"),
            ("rapdi", "rapid"), ("cosmc", "cosmic"), ("piepline", "pipeline"), ("routr", "router"),
            ("valut", "vault"), ("engien", "engine"), ("sotre", "store")]
CORRECTED = dict(MISSPELT)


def name(i):
    """The synthetic product with index i: "{Adjective} {Noun} {i}" (demo.rs)."""
    return f"{ADJECTIVES[i % 20].capitalize()} {NOUNS[(i // 20) % 20].capitalize()} {i}"


def product_path(i):
    slug = "-".join(w.lower() for w in re.split(r"[^A-Za-z0-9]+", name(i)) if w)
    return f"/products/vendor{i % 20:02}/{slug}"


def singular(w):
    """The catalog's plural folding (crates/slipway-catalog/src/text.rs)."""
    keep = len(w) <= 3 or w.endswith(("ss", "us", "is")) or not w.endswith("s")
    return w if keep else w[:-1]


def key(params):
    """An approximation of the server's cache key: the words as the catalog reads them
    (misspellings by the word they are corrected to) and the filters."""
    words = tuple(CORRECTED.get(w, w) for w in (singular(w.lower()) for w in re.split(r"[^\w]+", params.get("q", "")) if w))
    filters = tuple(sorted((k, v) for k, v in params.items() if k not in ("q", "cursor", "page", "limit")))
    return words, filters


def search_mix(rng, count):
    """~200 distinct searches, as query parameters (dicts), each with its kind; a few ask
    for page 2 (`page2` set: the API then sends cursor=o20, the HTML page page=2)."""
    mix = []

    def add(kind, **params):
        mix.append((kind, params))

    for w in NOUNS:                                          # single words
        add("word", q=w)
    for w in ADJECTIVES[:10] + DOMAINS[:10]:
        add("word", q=w)
    for w in ["databases", "gateways", "caches", "proxies", "scanners"]:   # plurals
        add("word", q=w)
    for a in range(20):                                      # two words
        add("two words", q=f"{ADJECTIVES[a]} {NOUNS[(a * 7) % 20]}")
    for n in range(15):
        add("two words", q=f"{NOUNS[n]} {DOMAINS[(n * 3) % 20]}")
    for a in range(8):
        add("two words", q=f"{DOMAINS[(a * 5) % 20]} {ADJECTIVES[(a * 3 + 1) % 20]}")
    for q in ["cache for retail", "gateway for payments", "database for healthcare teams",
              "secure vault", "fast dashboards", "container", "scales horizontally"]:   # phrases, broad words
        add("phrase", q=q)
    for i in rng.sample(range(count), 25):                   # product names
        n = name(i)
        add("name", q=n if i % 2 else n.lower())
    for typed, _ in MISSPELT:                                # misspellings
        add("misspelt", q=typed)
    for typed, _ in MISSPELT[:5]:
        add("misspelt", q=f"{typed} {DOMAINS[len(typed) % 20]}")
    for c in CATEGORIES[:10]:                                # filters
        add("filter", category=c)
    add("filter", category="databases", q="rapid")
    add("filter", category="monitoring", q="monitor")
    add("filter", category="security", q="scanner")
    add("filter", certified="1")
    add("filter", certified="1", q="gateway")
    add("filter", certified="1", category="databases")
    add("filter", certified="1", q="cache", sort="popular")
    add("filter", pricing="free", q="broker")
    add("filter", pricing="paid", q="vault")
    add("filter", pricing="free", category="storage")
    add("filter", type="image", q="proxy")
    add("filter", publisher="vendor03", q="gateway")
    add("filter", publisher="vendor07")
    add("filter", trust="community", q="engine")
    for w in ["database", "gateway", "scanner", "payments", "agent", "swift runner"]:
        add("sort", q=w, sort="popular")
    for w in ["cache", "retail", "mesh"]:
        add("sort", q=w, sort="updated")
    add("sort", sort="popular")
    add("sort", sort="updated")
    add("sort", category="databases", sort="popular")
    add("browse")                                            # all products
    for q in ["database", "gateway", "payments", "rapid", "secure vault", "container", "store", "media"]:
        add("page 2", q=q, page2="1")
    add("page 2", category="databases", page2="1")
    add("page 2", certified="1", page2="1")
    add("page 2", sort="popular", page2="1")
    # no exact repeats (a misspelling and its correction stay: both are typed, and the
    # correction runs before the cache is asked)
    seen, out = set(), []
    for kind, p in mix:
        k = tuple(sorted(p.items()))
        if k not in seen:
            seen.add(k)
            out.append((kind, p))
    return out


def query(params):
    return urlencode({k: v for k, v in params.items() if k != "page2"}, quote_via=quote)


def api_path(params, limit=None, offset=None):
    p = {k: v for k, v in params.items() if k != "page2"}
    if limit is not None:
        p["limit"] = str(limit)
    if offset:
        p["cursor"] = f"o{offset}"
    elif params.get("page2"):
        p["cursor"] = "o20"
    return "/api/v1/search?" + urlencode(p, quote_via=quote)


def html_path(params, page=None):
    p = {k: v for k, v in params.items() if k != "page2"}
    if page is not None:
        p["page"] = str(page)
    elif params.get("page2"):
        p["page"] = "2"
    return "/search?" + urlencode(p, quote_via=quote)


# Cold variants. Filters that keep (nearly) every synthetic product, so a search with
# them does the same work and finds the same results as without: all 100,000 synthetic
# products are community images (only some of the ~30 demo products are not).
NEAR_NO_OP = [{}, {"type": "image"}, {"trust": "community"}, {"type": "image", "trust": "community"}]
# Page sizes for the API: never 20, the default, so no cold request repeats a warm one.
COLD_LIMITS = [15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 26]


def full_key(params, limit, offset):
    return key(params), limit, offset


def misspell(word, c):
    """`word` with one letter dropped (never the first): one edit, which the server
    corrects back."""
    j = 1 + c % (len(word) - 2)
    return word[:j] + word[j + 1:]


def rotate(kind, params, c, rng):
    """The search `params` of the mix in its c-th cold instance: the same kind of
    search over other words of the vocabulary (c = 0 is the search itself). Adjectives,
    nouns and domains move through their lists so that word pairs repeat only every 400
    cycles; a product name becomes another product's; a misspelling, the same kind of
    typo of another word; a category or publisher, another one."""
    if c == 0:
        return dict(params)
    out = dict(params)
    if kind == "name":
        n = name(rng.randrange(len(NAMES_SPACE)))
        out["q"] = n if c % 2 else n.lower()
    elif "q" in params:
        words = []
        for tok in params["q"].split(" "):
            low = tok.lower()
            plural = low.endswith("s") and singular(low) in NOUNS
            base = singular(low) if plural else low
            if base in CORRECTED:
                target = CORRECTED[base]
                for cls, shift in ((NOUNS, c + c // 20), (ADJECTIVES, c), (DOMAINS, c + c // 20 + c // 400)):
                    if target in cls:
                        target = cls[(cls.index(target) + shift) % 20]
                typo = misspell(target, c)
                CORRECTED[typo] = target
                words.append(typo)
            elif base in ADJECTIVES:
                words.append(ADJECTIVES[(ADJECTIVES.index(base) + c) % 20])
            elif base in NOUNS:
                words.append(NOUNS[(NOUNS.index(base) + c + c // 20) % 20] + ("s" if plural else ""))
            elif base in DOMAINS:
                words.append(DOMAINS[(DOMAINS.index(base) + c + c // 20 + c // 400) % 20])
            else:
                words.append(tok)
        out["q"] = " ".join(words)
    if "category" in params:
        out["category"] = CATEGORIES[(CATEGORIES.index(params["category"]) + c) % len(CATEGORIES)]
    if "publisher" in params:
        out["publisher"] = f"vendor{(int(params['publisher'][6:]) + c) % 20:02}"
    return out


NAMES_SPACE = range(0)


def cold_lists(mix, cycles, count, rng):
    """`cycles` passes over the mix, each search in an instance no other request of the
    list asks for: first `rotate`d to other words; when the server would still see a
    search it was already asked for (same `key`), the next variant of that key: for the
    API a near-no-op filter set (4), a page size (11, never 20) and then the page
    (cursor); for the HTML page the filter set and the page (pages 1-2 only with a
    filter, so that no cold request repeats a warm one)."""
    global NAMES_SPACE
    NAMES_SPACE = range(count)
    api, html = [], []
    seen_api, seen_html = set(), set()
    counters = {}
    depth, progress = [0, 0], []
    for c in range(1, cycles + 1):
        for kind, p in mix:
            base = rotate(kind, {k: v for k, v in p.items() if k != "page2"}, c - 1, rng)
            k = key(base)
            n = counters.get(k, 0)
            while True:
                extra = NEAR_NO_OP[n % 4]
                limit = COLD_LIMITS[(n // 4) % len(COLD_LIMITS)]
                page = n // (4 * len(COLD_LIMITS))
                q = {**base, **extra}
                fk = full_key(q, limit, page * limit)
                n += 1
                if fk not in seen_api:
                    break
            seen_api.add(fk)
            depth[0] = max(depth[0], page + 1)
            api.append(api_path(q, limit=limit, offset=page * limit))
            m = counters.get(("html",) + k, 0)
            while True:
                extra = NEAR_NO_OP[m % 4]
                page = m // 4 + 1
                q = {**base, **extra}
                fk = full_key(q, 20, (page - 1) * 20)
                m += 1
                if (extra or page > 2) and fk not in seen_html:
                    break
            seen_html.add(fk)
            depth[1] = max(depth[1], page)
            html.append(html_path(q, page=page))
            counters[k] = n
            counters[("html",) + k] = m
        if c in (25, 50, 100, 200, 500):
            progress.append(f"after {c * len(mix)} requests API pages <= {depth[0]}, HTML pages <= {depth[1]}")
    return api, html, progress


def typeahead_prefixes(text):
    """What the search box sends while `text` is typed: every prefix of at least 2
    characters that does not end in a space."""
    return [text[:n] for n in range(2, len(text) + 1) if not text[:n].endswith(" ")]


def suggest_key(q):
    return tuple(singular(w.lower()) for w in re.split(r"[^\w]+", q) if w)


def suggest_lists(rng, count):
    warm, seen = [], set()

    def add(lst, q):
        k = suggest_key(q)
        if k and k not in seen:
            seen.add(k)
            lst.append(q)

    for w in NOUNS[:10] + ADJECTIVES[:8] + DOMAINS[:6]:
        for q in typeahead_prefixes(w)[:4]:
            add(warm, q)
    for a in range(12):
        for q in typeahead_prefixes(f"{ADJECTIVES[a]} {NOUNS[(a * 3) % 20]}")[len(ADJECTIVES[a]) - 1:][:4]:
            add(warm, q)
    for i in rng.sample(range(count), 10):                   # typing a product name
        n = name(i)
        for q in typeahead_prefixes(n.lower())[-4:]:
            add(warm, q)
    for q in ["datab", "gatw", "scann", "pipel", "notebo", "helthc", "teleme"]:   # misspelt or partial
        add(warm, q)
    warm = warm[:200]
    # Cold: every prefix of "adjective noun domain" phrases, then of product names,
    # each distinct (and distinct from the warm ones), shuffled.
    cold = []
    for a in ADJECTIVES:
        for n in NOUNS:
            for d in DOMAINS:
                for q in typeahead_prefixes(f"{a} {n} {d}"):
                    add(cold, q)
    for i in rng.sample(range(count), min(count, 20000)):
        for q in typeahead_prefixes(name(i).lower())[-3:]:
            add(cold, q)
    rng.shuffle(cold)
    return ["/api/v1/search/suggest?q=" + quote(q) for q in warm], ["/api/v1/search/suggest?q=" + quote(q) for q in cold]


def generate(count, outdir):
    rng = random.Random(20261123)
    mix = search_mix(rng, count)
    rng.shuffle(mix)
    lists = {
        "api": [api_path(p) for _, p in mix],
        "html": [html_path(p) for _, p in mix],
        "healthz": ["/healthz"],
    }
    lists["api_cold"], lists["html_cold"], depth = cold_lists(mix, 500, count, rng)
    lists["suggest"], lists["suggest_cold"] = suggest_lists(rng, count)
    warm_products = rng.sample(range(count), min(500, count))
    lists["product"] = [product_path(i) for i in warm_products]
    others = sorted(set(range(count)) - set(warm_products))
    rng.shuffle(others)
    lists["product_cold"] = [product_path(i) for i in others]
    for bench, paths in lists.items():
        with open(f"{outdir}/{bench}.txt", "w") as f:
            f.write("\n".join(paths) + "\n")
    kinds = {}
    for kind, _ in mix:
        kinds[kind] = kinds.get(kind, 0) + 1
    with open(f"{outdir}/mix.txt", "w") as f:
        f.write("search mix (%d distinct searches): %s\n" % (len(mix), ", ".join(f"{k} {n}" for k, n in kinds.items())))
        f.write("lists: %s\n" % ", ".join(f"{b} {len(p)}" for b, p in sorted(lists.items())))
        f.write("cold searches: %s\n" % "; ".join(depth))
    print(open(f"{outdir}/mix.txt").read(), end="")


def check(addr, files):
    host, port = addr.rsplit(":", 1)
    ok = True
    for path in files:
        paths = [line.strip() for line in open(path) if line.strip()]
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        t0 = time.monotonic()
        bad, empty = [], 0
        for p in paths:
            conn.request("GET", p)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                bad.append(f"{r.status} {p}")
            elif p.startswith("/api/v1/search?") and b'"total":0' in body:
                empty += 1
        conn.close()
        took = time.monotonic() - t0
        print(f"{path.rsplit('/', 1)[-1]}: {len(paths)} paths, {len(bad)} not 200, {empty} searches with no result, "
              f"{took:.1f} s ({1000 * took / max(1, len(paths)):.1f} ms each, one connection)", file=sys.stderr)
        for b in bad[:5]:
            print(f"  {b}", file=sys.stderr)
        ok = ok and not bad
    return ok


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "generate":
        generate(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2], sys.argv[3:]) else 1)
    else:
        sys.exit(__doc__)
