# ctest driver: runs mm-game-sim for 1 s into a fresh directory and checks the request files.
# cmake -DSIM=<mm-game-sim> -DDIR=<scratch dir> -P check_sim.cmake
file(REMOVE_RECURSE "${DIR}")
execute_process(COMMAND "${SIM}" --dir "${DIR}" --seconds 1 --fps 60 --spans-per-frame 200 --seed 7
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mm-game-sim exited with ${rc}")
endif()
foreach(route insert_process insert_stream insert_block)
  file(GLOB hits "${DIR}/*-${route}.cbor")
  list(LENGTH hits n)
  if(n EQUAL 0)
    message(FATAL_ERROR "no ${route} request written to ${DIR}")
  endif()
  message("${route}: ${n} file(s)")
endforeach()
file(GLOB streams "${DIR}/*-insert_stream.cbor")
list(LENGTH streams n)
if(n LESS 4)  # log, metrics, and the cpu streams of GameThread and RenderThread
  message(FATAL_ERROR "expected at least 4 streams, got ${n}")
endif()
