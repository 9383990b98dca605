#include "domain.h"

#include <string.h>

const char *const role_names[] = {"admin", "hub_manager", "police_liaison", "practitioner", NULL};

const char *const agency_kinds[] = {"police",    "health",  "social_care",
                                    "education", "housing", "youth_justice",
                                    "hub",       "other",   NULL};

int role_parse(const char *name)
{
    for (int i = 0; role_names[i] != NULL; i++)
        if (strcmp(role_names[i], name) == 0)
            return i;
    return -1;
}
