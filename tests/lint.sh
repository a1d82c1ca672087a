#!/bin/sh
# Rules that keep the architecture honest; each violation is printed and fails the test.
cd "$1" || exit 2
status=0
fail() { echo "lint: $*"; status=1; }

# Only the store speaks to the database; only the server includes Beast.
for f in $(grep -rlE 'pqxx|libpq-fe' config providers jobs gateway --include='*.cpp' --include='*.hpp'); do
  [ "$f" = jobs/store.cpp ] || fail "$f includes libpqxx or libpq (only jobs/store.cpp may)"
done
for f in $(grep -rl 'boost/beast' config providers jobs gateway --include='*.cpp' --include='*.hpp'); do
  case "$f" in gateway/server.cpp|gateway/push.cpp) ;; *) fail "$f includes Beast (only the server and the push client may)" ;; esac
done
# Signatures are compared in constant time only.
grep -rnE 'memcmp|strcmp' providers | grep -v CRYPTO_memcmp && fail "non-constant-time comparison in providers/"
grep -rnE '(digest|expected|candidate|signature)[a-z_]* *[!=]= ' providers && fail "== on a signature in providers/"
# Providers read no clock: `now` is passed in.
grep -rn 'system_clock::now\|steady_clock::now' providers && fail "providers/ reads the clock"
[ $status = 0 ] && echo "lint: ok"
exit $status
