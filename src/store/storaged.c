/* placeholder: being written */
typedef int vd_placeholder_storaged;
