#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The static HTTP fixture the KDS/PCS look-alike tests rely on: URL and query
# to file, .headers files, refused paths, 429 with Retry-After for the first
# N requests, hanging answers, the request log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/httpfixture-lib.sh"
need curl

D="$T/www"
mkdir -p "$D/a/b"
printf 'plain' >"$D/a/b/c"
printf 'withquery' >"$D/a/b/c@x=1&y=2"
printf 'Content-Type: application/x-pem-file\nX-Chain: abc%%20def\n' >"$D/a/b/c.headers"
printf 'secret' >"$T/outside"

get() { curl -sS -o "$T/body" -D "$T/head" -w '%{http_code}' --max-time 10 "$@"; }

start_httpfixture kds "$D"
check "a file by its path" sh -c "[ \"\$(curl -s '$FIXTURE_URL/a/b/c')\" = plain ]"
check "path@query when that file exists" sh -c "[ \"\$(curl -s '$FIXTURE_URL/a/b/c?x=1&y=2')\" = withquery ]"
check "another query falls back to the path" sh -c "[ \"\$(curl -s '$FIXTURE_URL/a/b/c?x=3')\" = plain ]"
get "$FIXTURE_URL/a/b/c" >/dev/null
check "headers from the .headers file" grep -qi '^X-Chain: abc%20def' "$T/head"
check "content type from the .headers file" grep -qi '^Content-Type: application/x-pem-file' "$T/head"
check "a missing file is 404" test "$(get "$FIXTURE_URL/a/b/nothing")" = 404
check "a directory is 404" test "$(get "$FIXTURE_URL/a/b")" = 404
check "a dotted component is 400" test "$(get --path-as-is "$FIXTURE_URL/a/../../outside")" = 400
check "an encoded dotted component is 400" test "$(get "$FIXTURE_URL/a/%2e%2e/%2e%2e/outside")" = 400
check "POST is 405" test "$(get -X POST "$FIXTURE_URL/a/b/c")" = 405
check "every request is logged" test "$(wc -l <"$FIXTURE_LOG")" -eq 9
check "the log names path, query and status" grep -qx 'GET /a/b/c?x=1&y=2 200' "$FIXTURE_LOG"
stop_httpfixture

start_httpfixture strict "$D" --strict-query
check "--strict-query: exact query served" sh -c "[ \"\$(curl -s '$FIXTURE_URL/a/b/c?x=1&y=2')\" = withquery ]"
check "--strict-query: another query is 404" test "$(get "$FIXTURE_URL/a/b/c?x=3")" = 404
stop_httpfixture

start_httpfixture limit "$D" --fail-count 2 --retry-after 7
check "first request: 429" test "$(get "$FIXTURE_URL/a/b/c")" = 429
check "429 carries Retry-After" grep -qi '^Retry-After: 7' "$T/head"
check "second request: 429" test "$(get "$FIXTURE_URL/a/b/c")" = 429
check "third request: 200" test "$(get "$FIXTURE_URL/a/b/c")" = 200
check "the log counts two 429s" test "$(fixture_fetches ' 429$')" = 2
stop_httpfixture

start_httpfixture down "$D" --fail-count -1 --fail-status 500
check "--fail-count -1: every request fails" test "$(get "$FIXTURE_URL/a/b/c")" = 500
check "--fail-count -1: still failing" test "$(get "$FIXTURE_URL/a/b/c")" = 500
check "no Retry-After unless asked" sh -c "! grep -qi '^Retry-After' '$T/head'"
stop_httpfixture

start_httpfixture hang "$D" --fail-count 1 --fail-status hang --hang-seconds 30
refuse "a hanging answer times the client out" curl -sf --max-time 1 "$FIXTURE_URL/a/b/c"
check "the next request is answered" test "$(get "$FIXTURE_URL/a/b/c")" = 200
check "the hang is logged" test "$(fixture_fetches ' hang$')" = 1
stop_httpfixture
finish
