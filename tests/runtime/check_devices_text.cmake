# Runs `kwaainet devices` (text) and checks that the CPU and the Vulkan section are printed.
execute_process(COMMAND ${KWAAINET} devices OUTPUT_VARIABLE out ERROR_VARIABLE err
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kwaainet devices exited with ${rc}\n${err}")
endif()
foreach(needle "CPU" "cores /" "Vulkan devices" "maxStorageBufferRange")
  string(FIND "${out}" "${needle}" pos)
  if(pos LESS 0)
    message(FATAL_ERROR "'${needle}' missing from:\n${out}")
  endif()
endforeach()
