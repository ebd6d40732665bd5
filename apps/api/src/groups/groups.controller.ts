import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiZodBody, ApiZodResponse } from '../common/openapi.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { CurrentPrincipal, Roles } from '../auth/decorators.js';
import type { ApiPrincipal } from '../auth/principal.js';
import { GroupsService } from './groups.service.js';
import {
  createGroupSchema, groupViewSchema, setMembersSchema, updateGroupSchema,
  type CreateGroup, type GroupView, type SetMembers, type UpdateGroup,
} from './dto/group.dto.js';

@ApiTags('groups')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/groups')
export class GroupsController {
  constructor(private readonly groups: GroupsService) {}

  @Get()
  @ApiZodResponse(z.array(groupViewSchema))
  list(): Promise<GroupView[]> {
    return this.groups.list();
  }

  @Post()
  @ApiZodBody(createGroupSchema)
  @ApiZodResponse(groupViewSchema, 201)
  create(@Body(new ZodValidationPipe(createGroupSchema)) body: CreateGroup, @CurrentPrincipal() p: ApiPrincipal): Promise<GroupView> {
    return this.groups.create(body, p.subject);
  }

  @Get(':name')
  @ApiZodResponse(groupViewSchema)
  get(@Param('name') name: string): Promise<GroupView> {
    return this.groups.get(name);
  }

  @Patch(':name')
  @ApiZodBody(updateGroupSchema)
  @ApiZodResponse(groupViewSchema)
  update(@Param('name') name: string, @Body(new ZodValidationPipe(updateGroupSchema)) body: UpdateGroup, @CurrentPrincipal() p: ApiPrincipal): Promise<GroupView> {
    return this.groups.update(name, body, p.subject);
  }

  @Put(':name/members')
  @ApiZodBody(setMembersSchema)
  @ApiZodResponse(groupViewSchema)
  setMembers(@Param('name') name: string, @Body(new ZodValidationPipe(setMembersSchema)) body: SetMembers, @CurrentPrincipal() p: ApiPrincipal): Promise<GroupView> {
    return this.groups.setMembers(name, body, p.subject);
  }

  @Delete(':name')
  @HttpCode(204)
  remove(@Param('name') name: string, @CurrentPrincipal() p: ApiPrincipal): Promise<void> {
    return this.groups.remove(name, p.subject);
  }
}
