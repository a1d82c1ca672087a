#!/bin/sh
# Rules that keep the architecture honest; each violation is printed and fails the test.
cd "$1" || exit 2
status=0
fail() { echo "lint: $*"; status=1; }

dirs="text config providers jobs gateway"
# Only the store and the committer's pipeline speak to the database (directly, or through the
# store's internal headers).
for f in $(grep -rlE '#include [<"](pqxx|libpq-fe|jobs/database.hpp|jobs/rows.hpp)' $dirs --include='*.cpp' --include='*.hpp'); do
  case "$f" in
    jobs/database.hpp|jobs/database.cpp|jobs/rows.hpp|jobs/store.cpp|jobs/lifecycle.cpp|jobs/deliveries.cpp|jobs/replays.cpp|jobs/prune.cpp|jobs/console.cpp|jobs/migrations.cpp|jobs/pipeline.cpp) ;;
    *) fail "$f includes libpqxx or libpq (only the store's files and jobs/pipeline.cpp may)" ;;
  esac
done
# Beast and Asio are heavy to compile: Beast only in the session and the push client, Asio
# besides only in the server and what it shares with the session.
for f in $(grep -rlE '#include [<"]boost/beast' $dirs --include='*.cpp' --include='*.hpp'); do
  case "$f" in gateway/session.cpp|gateway/push.cpp) ;; *) fail "$f includes Beast (only gateway/session.cpp and gateway/push.cpp may)" ;; esac
done
for f in $(grep -rlE '#include [<"]boost/asio' $dirs --include='*.cpp' --include='*.hpp'); do
  case "$f" in
    gateway/server.cpp|gateway/session.hpp|gateway/session.cpp|gateway/loop.hpp|gateway/push.cpp) ;;
    *) fail "$f includes Asio (only the server, the session and the push client may)" ;;
  esac
done
# Signatures are compared in constant time only.
grep -rnE 'memcmp|strcmp' providers | grep -v CRYPTO_memcmp && fail "non-constant-time comparison in providers/"
grep -rnE '(digest|expected|candidate|signature)[a-z_]* *[!=]= ' providers && fail "== on a signature in providers/"
# Providers read no clock: `now` is passed in.
grep -rn 'system_clock::now\|steady_clock::now' providers && fail "providers/ reads the clock"
[ $status = 0 ] && echo "lint: ok"
exit $status
