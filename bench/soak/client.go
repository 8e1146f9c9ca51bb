package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// challenge is a parsed `WWW-Authenticate: Bearer realm=...,service=...,scope=...`.
type challenge struct {
	realm, service, scope string
}

// parseChallenge reads a Bearer challenge; parameter values are quoted strings that may
// hold commas (a scope of "repository:a/b:pull,push").
func parseChallenge(header string) (challenge, bool) {
	var ch challenge
	rest := strings.TrimSpace(header)
	if len(rest) < 7 || !strings.EqualFold(rest[:7], "bearer ") {
		return ch, false
	}
	rest = rest[7:]
	for {
		rest = strings.TrimLeft(rest, " ,")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = rest[eq+1:]
		var value string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			value = b.String()
			if i < len(rest) {
				i++
			}
			rest = rest[i:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			value = strings.TrimSpace(rest[:end])
			rest = rest[end:]
		}
		switch key {
		case "realm":
			ch.realm = value
		case "service":
			ch.service = value
		case "scope":
			ch.scope = value
		}
	}
	return ch, ch.realm != ""
}

// tokenEntry is one cached registry token; its mutex is held while it is fetched, so
// goroutines needing the same scope wait for one fetch instead of each making one.
type tokenEntry struct {
	mu        sync.Mutex
	token     string
	refreshAt time.Time
}

// registry is the shared client: one HTTP transport with keep-alive for every worker (as
// one client process has), and one token cache per (realm, service, scope), as a Docker
// client keeps.
type registry struct {
	base     *url.URL
	hc       *http.Client
	user     string
	password string
	timeout  time.Duration
	stats    *stats

	mu     sync.Mutex
	tokens map[challenge]*tokenEntry
	// hints maps what a request does ("pull:REPO", "push:REPO") to the challenge the
	// registry answered it with, so later requests send the right token up front.
	hints sync.Map
}

func newRegistry(addr, user, password string, conns int, timeout time.Duration, st *stats) (*registry, error) {
	base, err := url.Parse("http://" + addr)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		// Below the server's idle timeout (60 s), so the client, not the server, closes an
		// idle connection and no request races a server-side close.
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
	}
	return &registry{
		base:     base,
		hc:       &http.Client{Transport: transport},
		user:     user,
		password: password,
		timeout:  timeout,
		stats:    st,
		tokens:   map[challenge]*tokenEntry{},
	}, nil
}

func (r *registry) url(format string, args ...any) string {
	return r.base.String() + fmt.Sprintf(format, args...)
}

// resolve turns a Location header (absolute or relative) into a URL.
func (r *registry) resolve(location string) (*url.URL, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, err
	}
	return r.base.ResolveReference(u), nil
}

// token returns a token for the challenge from the cache, fetching one when there is
// none, when the cached one is due for renewal, or when it is `stale` (the registry just
// refused it).
func (r *registry) token(ctx context.Context, ch challenge, stale string) (string, error) {
	r.mu.Lock()
	e := r.tokens[ch]
	if e == nil {
		e = &tokenEntry{}
		r.tokens[ch] = e
	}
	r.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" && e.token != stale && time.Now().Before(e.refreshAt) {
		return e.token, nil
	}
	u, err := url.Parse(ch.realm)
	if err != nil {
		return "", failure("token GET: bad realm", ch.realm)
	}
	q := u.Query()
	if ch.service != "" {
		q.Set("service", ch.service)
	}
	if ch.scope != "" {
		q.Set("scope", ch.scope)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", failure("token GET: request", err.Error())
	}
	req.SetBasicAuth(r.user, r.password)
	start := time.Now()
	r.stats.requests.Add(1)
	resp, err := r.hc.Do(req)
	if err != nil {
		return "", failure("token GET: transport error", err.Error())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return "", failure("token GET: reading the body", err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return "", statusFailure("token GET", resp, body)
	}
	var answer struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", failure("token GET: answer is not JSON", err.Error())
	}
	token := answer.Token
	if token == "" {
		token = answer.AccessToken
	}
	if token == "" {
		return "", failure("token GET: no token in the answer", string(body))
	}
	r.stats.record(opToken, start)
	r.stats.tokens.Add(1)
	// The token specification's default lifetime is 60 s. Renew a tenth of the lifetime
	// before it ends, at least 5 s and at most 30 s before.
	life := time.Duration(answer.ExpiresIn) * time.Second
	if life <= 0 {
		life = 60 * time.Second
	}
	margin := min(max(life/10, 5*time.Second), 30*time.Second, life/2)
	e.token = token
	e.refreshAt = time.Now().Add(life - margin)
	return token, nil
}

// do sends one request the way a Docker client does: with the cached token for what the
// request does (hint), if the registry has challenged such a request before; on a 401
// with a Bearer challenge it fetches (or renews) the token for the challenge's scope and
// sends the request again, once. The caller closes the body. body may be nil.
func (r *registry) do(ctx context.Context, method, rawURL string, body []byte, header http.Header, hint string) (*http.Response, error) {
	sent := ""
	for attempt := 0; ; attempt++ {
		var reader io.Reader = http.NoBody
		if body != nil {
			reader = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, rawURL, reader)
		if err != nil {
			return nil, failure(method+": building the request", err.Error())
		}
		if body != nil {
			req.ContentLength = int64(len(body))
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if v, ok := r.hints.Load(hint); ok {
			token, err := r.token(ctx, v.(challenge), "")
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			sent = token
		}
		r.stats.requests.Add(1)
		resp, err := r.hc.Do(req)
		if err != nil {
			return nil, failure(method+": transport error", err.Error())
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		ch, ok := parseChallenge(resp.Header.Get("WWW-Authenticate"))
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if !ok {
			return nil, failure(method+": 401 without a Bearer challenge", resp.Header.Get("WWW-Authenticate"))
		}
		r.stats.challenges.Add(1)
		if sent != "" {
			r.stats.refused.Add(1)
		}
		r.hints.Store(hint, ch)
		if _, err := r.token(ctx, ch, sent); err != nil {
			return nil, err
		}
	}
}

// soakError is a failure with a short reason (counted, the first few kept) and a detail
// (the first one of each reason is printed).
type soakError struct {
	reason, detail string
}

func (e *soakError) Error() string { return e.reason + ": " + e.detail }

func failure(reason, detail string) error {
	if len(detail) > 300 {
		detail = detail[:300] + "..."
	}
	return &soakError{reason: reason, detail: detail}
}

// statusFailure describes an unexpected answer: the status and the registry's error code
// in the reason, the message in the detail.
func statusFailure(what string, resp *http.Response, body []byte) error {
	var envelope struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	code := ""
	if json.Unmarshal(body, &envelope) == nil && len(envelope.Errors) > 0 {
		code = " " + envelope.Errors[0].Code
	}
	return failure(fmt.Sprintf("%s: status %d%s", what, resp.StatusCode, code),
		fmt.Sprintf("%s %s: %s", resp.Request.Method, resp.Request.URL.Path, strings.TrimSpace(string(body))))
}
