"""One module per assignment, each defining ``ASSIGNMENT``; registered in ``course_lib.grading.cases``."""
