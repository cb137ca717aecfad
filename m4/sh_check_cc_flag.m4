# SH_CHECK_CC_FLAG(FLAGS, [ACTION-IF-OK], [ACTION-IF-NOT])
# Checks that the C compiler compiles and links a trivial program with FLAGS.
AC_DEFUN([SH_CHECK_CC_FLAG], [
  AC_MSG_CHECKING([whether $CC accepts $1])
  sh_save_CFLAGS=$CFLAGS
  sh_save_LDFLAGS=$LDFLAGS
  CFLAGS="$CFLAGS $1"
  LDFLAGS="$LDFLAGS $1"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([], [return 0;])],
    [AC_MSG_RESULT([yes]); $2],
    [AC_MSG_RESULT([no]); $3])
  CFLAGS=$sh_save_CFLAGS
  LDFLAGS=$sh_save_LDFLAGS
])
