#!/bin/sh
# Runs one Vulkan op case with a pipeline-cache location that cannot be created, and passes
# only if the process exits 0 *and* the failed save was reported (so the exit path that logs
# from a destructor at exit really ran). Usage: exit_with_unsaveable_cache.sh BINARY DIR
bin=$1
home=$2/cache_home_is_a_file
: > "$home"
out=$(XDG_CACHE_HOME="$home" "$bin" '--gtest_filter=Backends/ElementwiseTest.add*/vulkan' 2>&1)
rc=$?
echo "$out"
echo "exit status: $rc"
[ "$rc" -eq 0 ] || exit 1
echo "$out" | grep -q "could not save pipeline cache" || { echo "the save did not fail"; exit 1; }
