# Fuzz targets of the hivemind core (owner: hivemind). Seeds under corpus/fuzz_hivemind_*/ come
# from shared/vectors/hivemind plus a few broken inputs.
foreach(name unary stream msgpack tensor dht)
  kwaai_add_fuzzer(NAME fuzz_hivemind_${name}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_hivemind_${name}.cpp
    LIBS kwaai_hivemind_core
    CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_hivemind_${name})
endforeach()
