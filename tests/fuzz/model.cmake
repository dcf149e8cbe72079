# Fuzz targets of engine/model: safetensors header, GGUF, HF config.json, tokenizer.json + text.
foreach(name safetensors gguf hf_config tokenizer)
  kwaai_add_fuzzer(NAME fuzz_model_${name}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_model_${name}.cpp
    LIBS kwaai_model nlohmann_json::nlohmann_json
    CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_model_${name})
endforeach()
