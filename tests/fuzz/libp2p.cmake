# libp2p core fuzz targets (owner: libp2p-core). Only kwaai_libp2p_core is linked, which is
# built in clang fuzz builds too.
foreach(name multistream yamux multiaddr noise protobuf)
  kwaai_add_fuzzer(NAME fuzz_libp2p_${name}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_libp2p_${name}.cpp
    LIBS kwaai_libp2p_core
    CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_libp2p_${name})
endforeach()
