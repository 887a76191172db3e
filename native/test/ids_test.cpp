// Process, stream and block ids come from the OS's CSPRNG: every process draws its own, and a
// child forked after init does not repeat its parent's ids.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "encode/text_format.h"
#include "micromegas/micromegas.h"

namespace {

constexpr size_t kIdLength = 36;

// Reads exactly n bytes (a child's ids) from fd; false on EOF before that.
bool read_exactly(int fd, char* out, size_t n) {
  while (n > 0) {
    ssize_t got = read(fd, out, n);
    if (got <= 0) return false;
    out += got;
    n -= size_t(got);
  }
  return true;
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t put = write(fd, p, n);
    if (put <= 0) _exit(3);
    p += put;
    n -= size_t(put);
  }
}

void expect_v4(const std::string& id) {
  ASSERT_EQ(id.size(), kIdLength) << id;
  EXPECT_EQ(id[14], '4') << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
}

TEST(ProcessIds, TwoThousandProcessesEachInitAndAllIdsDiffer) {
  const int kProcesses = 2000, kBatch = 50;  // a batch's ids fit in the pipe buffer
  auto dir = std::filesystem::temp_directory_path() / ("mm-ids-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::set<std::string> ids;
  for (int started = 0; started < kProcesses; started += kBatch) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::vector<pid_t> children;
    for (int i = 0; i < kBatch; ++i) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        close(fds[0]);
        mm_config c;
        mm_config_init(&c);
        std::string d = dir.string();
        c.directory = d.c_str();
        c.crash_handler = 0;
        if (mm_init(&c) != 0) _exit(2);
        write_all(fds[1], mm_process_id(), kIdLength);
        _exit(0);  // no flush: only the id matters
      }
      children.push_back(pid);
    }
    close(fds[1]);
    for (int i = 0; i < kBatch; ++i) {
      char buf[kIdLength];
      ASSERT_TRUE(read_exactly(fds[0], buf, kIdLength)) << "a child wrote no process id";
      std::string id(buf, kIdLength);
      expect_v4(id);
      EXPECT_TRUE(ids.insert(id).second) << "process id drawn twice: " << id;
    }
    close(fds[0]);
    for (pid_t pid : children) {
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    }
  }
  EXPECT_EQ(ids.size(), size_t(kProcesses));
  std::filesystem::remove_all(dir);
}

TEST(ProcessIds, AChildForkedAfterInitDoesNotRepeatItsParentsIds) {
  const int kIds = 200;
  std::set<std::string> parent_ids{mm::Uuid::random().str()};  // "init": the generator has been used
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    for (int i = 0; i < kIds; ++i) write_all(fds[1], mm::Uuid::random().str().c_str(), kIdLength);
    _exit(0);
  }
  close(fds[1]);
  for (int i = 0; i < kIds; ++i) parent_ids.insert(mm::Uuid::random().str());
  std::set<std::string> child_ids;
  for (int i = 0; i < kIds; ++i) {
    char buf[kIdLength];
    ASSERT_TRUE(read_exactly(fds[0], buf, kIdLength));
    std::string id(buf, kIdLength);
    expect_v4(id);
    EXPECT_EQ(parent_ids.count(id), 0u) << "the child repeated its parent's id " << id;
    child_ids.insert(id);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(child_ids.size(), size_t(kIds));
  EXPECT_EQ(parent_ids.size(), size_t(kIds + 1));
}

}  // namespace
