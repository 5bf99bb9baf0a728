#!/bin/sh
# install_test.sh — what a user of the library gets (issue #17):
#   exports    libqeil.so exports exactly the functions the public headers
#              declare (QEIL_API): no internal qeil_* symbol, none missing;
#              its soname is libqeil.so.MAJOR
#   install    make install PREFIX=<temp> writes the libraries, links,
#              headers, qeil.pc and the CLI
#   shared     the README's library example (extracted from README.md, so
#              the README cannot drift) builds with
#              `cc prog.c $(pkg-config --cflags --libs qeil)`, -std=c11
#              -Wall -Wextra -Werror, and runs: with an rpath, and with
#              LD_LIBRARY_PATH
#   static     the same with libqeil.a linked in (pkg-config --static),
#              no libqeil.so needed at run time, same output
#   uninstall  make uninstall leaves no file or link behind
#   destdir    DESTDIR staging: files under DESTDIR, qeil.pc naming PREFIX
#
# Run by tests/run.sh from the repository root with QEIL_BIN=DIR/qeil; DIR is
# the build directory whose libraries are checked and installed (built with
# `make tests`, which builds them). A sanitizer build's libraries need the
# sanitizer runtime in every program that loads them: there the exports are
# checked and the install steps SKIP (the release build runs them).
set -u
BUILD=$(dirname "${QEIL_BIN:-build/qeil}")
CC=${CC:-cc}
VERSION=$(sed -n 's/^#define QEIL_VERSION_STRING "\(.*\)"/\1/p' include/qeil/qeil.h)
MAJOR=${VERSION%%.*}
SHLIB="$BUILD/libqeil.so.$VERSION"
tmp=$(mktemp -d /tmp/qeil-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL $1"; failed=1; }

# A directory without the CLI is no build (tests/run.sh's own test hands it
# an empty one): nothing to check, and nothing may be built here.
if [ ! -x "$BUILD/qeil" ]; then
    echo "# install_test: no $BUILD/qeil, nothing to check"
    exit 0
fi
# make install must only copy: a stale build would be rebuilt here, with
# whatever flags this shell has, into the directory under test
if command -v make >/dev/null 2>&1 &&
   ! make -q --no-print-directory BUILD="$BUILD" "$BUILD/qeil" "$BUILD/libqeil.a" "$SHLIB" >/dev/null 2>&1; then
    echo "FAIL $BUILD is out of date (or has no $SHLIB): run make (make tests) first"
    exit 1
fi

# ---- exports -----------------------------------------------------------------
if [ ! -f "$SHLIB" ]; then
    fail "exports: no $SHLIB (make tests builds it)"
elif ! command -v nm >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1; then
    echo "SKIP exports: needs nm and gcc (-aux-info lists the headers' declarations)"
else
    # every function the public headers declare (extern; static inline ones
    # are not symbols), from the compiler itself rather than a regex
    for h in include/qeil/*.h; do echo "#include \"qeil/$(basename "$h")\""; done >"$tmp/all.c"
    if ! gcc -std=c11 -Iinclude -fsyntax-only -aux-info "$tmp/aux.txt" "$tmp/all.c" 2>"$tmp/err"; then
        cat "$tmp/err"
        fail "exports: the public headers do not compile on their own"
    else
        grep '^/\* include/qeil/' "$tmp/aux.txt" | grep ' extern ' |
            sed 's/ (.*//; s/.*[ *]//' | sort -u >"$tmp/declared"
        nm -D --defined-only "$SHLIB" | awk '{print $3}' | sort -u >"$tmp/exported"
        n_decl=$(wc -l <"$tmp/declared"); n_exp=$(wc -l <"$tmp/exported")
        extra=$(comm -13 "$tmp/declared" "$tmp/exported" | tr '\n' ' ')
        missing=$(comm -23 "$tmp/declared" "$tmp/exported" | tr '\n' ' ')
        soname=$(readelf -d "$SHLIB" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
        if [ "$n_decl" -lt 100 ]; then
            fail "exports: only $n_decl declarations found in include/qeil/*.h (the extraction broke)"
        elif [ -n "$extra" ]; then
            fail "exports: $SHLIB exports symbols no public header declares (mark them static, or QEIL_API in a header): $extra"
        elif [ -n "$missing" ]; then
            fail "exports: public functions not exported (no QEIL_API on the declaration, or no definition): $missing"
        elif [ "$soname" != "libqeil.so.$MAJOR" ]; then
            fail "exports: soname '$soname', want libqeil.so.$MAJOR"
        else
            echo "PASS exports: $n_exp symbols, exactly the $n_decl functions of include/qeil/*.h; soname $soname"
        fi
    fi
fi

# ---- install, build the README example both ways, uninstall ------------------
if nm "$BUILD/qeil" 2>/dev/null | grep -q '__asan_init\|__ubsan_handle'; then
    echo "SKIP install: $BUILD is a sanitizer build (its libraries need the sanitizer runtime); the release build runs this"
    exit "$failed"
fi
for tool in make pkg-config readelf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP install: $tool not found"
        exit "$failed"
    fi
done

prefix="$tmp/prefix"
mk() { make -s --no-print-directory BUILD="$BUILD" "$@" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; return 1; }; }

if ! mk install PREFIX="$prefix"; then
    fail "install: make install PREFIX=$prefix failed"
    exit 1
fi
lib="$prefix/lib"
missing=""
for f in lib/libqeil.a "lib/libqeil.so.$VERSION" "lib/libqeil.so.$MAJOR" lib/libqeil.so \
         lib/pkgconfig/qeil.pc include/qeil/qeil.h include/qeil/plan.h bin/qeil; do
    [ -e "$prefix/$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then
    fail "install: missing under $prefix:$missing"
elif [ "$(readlink "$lib/libqeil.so.$MAJOR")" != "libqeil.so.$VERSION" ] ||
     [ "$(readlink "$lib/libqeil.so")" != "libqeil.so.$MAJOR" ]; then
    fail "install: links libqeil.so.$MAJOR -> $(readlink "$lib/libqeil.so.$MAJOR"), libqeil.so -> $(readlink "$lib/libqeil.so")"
else
    echo "PASS install: libqeil.a, libqeil.so.$VERSION (+ .so.$MAJOR, .so links), headers, qeil.pc, bin/qeil"
fi

# the README's example, as written there
awk '/^## Library use/ { f = 1 } f && /^```c$/ { g = 1; next } g && /^```$/ { exit } g' README.md >"$tmp/prog.c"
PKG_CONFIG_PATH="$lib/pkgconfig"
export PKG_CONFIG_PATH
# no other libqeil may satisfy the link or the loader
unset LD_LIBRARY_PATH LIBRARY_PATH CPATH C_INCLUDE_PATH
cflags="-std=c11 -Wall -Wextra -Werror"
is_energy() { grep -Eq '^[0-9]+\.[0-9]+ J$' "$1"; }

if ! grep -q 'int main' "$tmp/prog.c"; then
    fail "shared: no complete C example under '## Library use' in README.md"
# shellcheck disable=SC2046,SC2086
elif ! $CC $cflags "$tmp/prog.c" -o "$tmp/prog_shared" $(pkg-config --cflags --libs qeil) \
        -Wl,-rpath,"$lib" 2>"$tmp/err"; then
    cat "$tmp/err"
    fail "shared: cc prog.c \$(pkg-config --cflags --libs qeil) failed"
elif ! "$tmp/prog_shared" >"$tmp/out_shared" 2>&1 || ! is_energy "$tmp/out_shared"; then
    cat "$tmp/out_shared"
    fail "shared: the example did not print its energy"
elif ! readelf -d "$tmp/prog_shared" | grep -q "NEEDED.*\[libqeil.so.$MAJOR\]"; then
    fail "shared: the program does not load libqeil.so.$MAJOR"
# shellcheck disable=SC2046,SC2086
elif ! $CC $cflags "$tmp/prog.c" -o "$tmp/prog_ld" $(pkg-config --cflags --libs qeil) 2>"$tmp/err"; then
    cat "$tmp/err"
    fail "shared: the build without rpath failed"
elif ! LD_LIBRARY_PATH="$lib" "$tmp/prog_ld" >"$tmp/out_ld" 2>&1 ||
     ! cmp -s "$tmp/out_ld" "$tmp/out_shared"; then
    cat "$tmp/out_ld"
    fail "shared: with LD_LIBRARY_PATH=$lib the example failed or printed something else"
elif ! LD_LIBRARY_PATH="$lib" ldd "$tmp/prog_ld" | grep -q "libqeil.so.$MAJOR => $lib/"; then
    fail "shared: libqeil.so.$MAJOR not loaded from $lib: $(LD_LIBRARY_PATH="$lib" ldd "$tmp/prog_ld" | grep qeil)"
else
    echo "PASS shared: README example built with pkg-config --cflags --libs qeil, printed $(cat "$tmp/out_shared") (rpath and LD_LIBRARY_PATH)"
fi

static_libs=$(pkg-config --static --libs qeil | sed 's/-lqeil\b/-l:libqeil.a/')
case "$(pkg-config --static --libs qeil)" in
    *-lcjson*) ;;
    *) fail "static: pkg-config --static --libs qeil names no -lcjson (Requires.private: libcjson)" ;;
esac
# shellcheck disable=SC2046,SC2086
if ! $CC $cflags "$tmp/prog.c" -o "$tmp/prog_static" $(pkg-config --cflags qeil) $static_libs 2>"$tmp/err"; then
    cat "$tmp/err"
    fail "static: cc prog.c \$(pkg-config --cflags qeil) $static_libs failed"
elif readelf -d "$tmp/prog_static" | grep -q 'NEEDED.*libqeil'; then
    fail "static: the program still needs libqeil.so"
elif ! "$tmp/prog_static" >"$tmp/out_static" 2>&1 || ! cmp -s "$tmp/out_static" "$tmp/out_shared"; then
    cat "$tmp/out_static"
    fail "static: the example failed or printed something else than the shared build"
else
    echo "PASS static: README example with libqeil.a (pkg-config --static: $static_libs) printed the same"
fi

if ! mk uninstall PREFIX="$prefix"; then
    fail "uninstall: make uninstall failed"
else
    left=$(find "$prefix" ! -type d | sed "s|^$prefix/||" | tr '\n' ' ')
    if [ -n "$left" ]; then
        fail "uninstall: left behind under $prefix: $left"
    elif [ -d "$prefix/include/qeil" ]; then
        fail "uninstall: left $prefix/include/qeil"
    else
        echo "PASS uninstall: nothing left under $prefix"
    fi
fi

# ---- DESTDIR staging ----------------------------------------------------------
stage="$tmp/stage"
if ! mk install DESTDIR="$stage" PREFIX=/opt/qeil; then
    fail "destdir: make install DESTDIR=$stage PREFIX=/opt/qeil failed"
elif [ ! -f "$stage/opt/qeil/lib/libqeil.so.$VERSION" ] || [ ! -f "$stage/opt/qeil/bin/qeil" ]; then
    fail "destdir: the files are not under $stage/opt/qeil: $(find "$stage" ! -type d | tr '\n' ' ')"
elif ! grep -qx 'prefix=/opt/qeil' "$stage/opt/qeil/lib/pkgconfig/qeil.pc" ||
     grep -q "$stage" "$stage/opt/qeil/lib/pkgconfig/qeil.pc"; then
    cat "$stage/opt/qeil/lib/pkgconfig/qeil.pc"
    fail "destdir: qeil.pc must name PREFIX=/opt/qeil, never the staging directory"
elif ! mk uninstall DESTDIR="$stage" PREFIX=/opt/qeil || [ -n "$(find "$stage" ! -type d)" ]; then
    fail "destdir: make uninstall DESTDIR=... left: $(find "$stage" ! -type d | tr '\n' ' ')"
else
    echo "PASS destdir: staged under DESTDIR, qeil.pc names /opt/qeil, uninstalled cleanly"
fi
exit "$failed"
