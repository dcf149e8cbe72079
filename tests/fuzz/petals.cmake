# Fuzz targets of the Petals protocol pieces (owner: petals). Seeds under
# corpus/fuzz_petals_*/ come from shared/vectors/hivemind/petals_*.json plus broken inputs.
foreach(name serverinfo request)
  kwaai_add_fuzzer(NAME fuzz_petals_${name}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_petals_${name}.cpp
    LIBS kwaai_petals_core kwaai_hivemind_core
    CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_petals_${name})
endforeach()
